/**
 * The contract between the A2UI library (normalise, patch, render) and the console app.
 * The library never touches the network; the app never builds DOM from document data
 * itself — it hands documents to `renderDocument`.
 */

/** A normalised, bounded A2UI v1 document (see reference runtime.md §8 and palyra_sdk.a2ui). */
export interface A2uiDocument {
  readonly v: 1;
  readonly surface: string;
  readonly title?: string;
  readonly components: readonly A2uiComponent[];
}

/** One component; `type` selects which of the optional fields are meaningful. */
export interface A2uiComponent {
  readonly id: string;
  readonly type: string;
  readonly [key: string]: unknown;
}

export interface RenderOptions {
  /** Called when a form is submitted: the component id and the collected values. */
  onSubmit?: (componentId: string, values: Record<string, unknown>) => void;
}

/** Raised (never anything else) for a document or patch that must not be rendered/applied. */
export class A2uiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "A2uiError";
  }
}
