/** Public API of the A2UI library: normalise, patch and render A2UI v1 documents. */
import "./styles.css";

export { A2uiError } from "./types";
export type { A2uiComponent, A2uiDocument, RenderOptions } from "./types";
export {
  A2UI_LIMITS,
  CHART_KINDS,
  COMPONENT_TYPES,
  FIELD_TYPES,
  TONES,
  isA2uiDocument,
  normalizeDocument,
} from "./normalize";
export type { A2uiChartKind, A2uiFieldType, A2uiFormField, A2uiTone } from "./normalize";
export { A2UI_PATCH_LIMITS, applyPatch } from "./patch";
export { renderDocument, safeHttpUrl } from "./render";
