"""acme.report: an expense report the console renders as A2UI, with a form that adds to it.

``report`` returns an A2UI document: a summary line, a bar chart of the totals per category,
a table of the latest expenses and a form. The form's ``submit_tool`` is ``add_entry``, a tool
of this same skill: when someone submits it, the console calls ``add_entry`` with
``{"componentId": "add-expense", "values": {"category": ..., "amount": ..., "description":
...}}`` (the SDK's ``a2ui.FORM_SUBMISSION_SCHEMA``). ``add_entry`` checks the values like any
input (the console enforces neither ranges nor required fields), stores the expense and
answers with the updated report.

Expenses live in the skill's storage as one JSON list under ``report/expenses`` (amounts in
cents, so totals add up exactly).
"""

import math
import time
from typing import Annotated, Any

from palyra_sdk import Field, ToolFailure, a2ui, log, storage, tool

EXPENSES = "report/expenses"
FORM_ID = "add-expense"
CATEGORIES = {"travel": "Travel", "meals": "Meals", "software": "Software", "office": "Office"}
MAX_AMOUNT = 5000  # per expense, in euros
MAX_EXPENSES = 200  # so a category's total stays within the chart's 1 000 000 bound
MAX_DESCRIPTION = 120


def _load() -> list[dict[str, Any]]:
    return list(storage.get_json(EXPENSES, []))


def _euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _document(expenses: list[dict[str, Any]], limit: int, notice: str | None) -> a2ui.Document:
    totals = dict.fromkeys(CATEGORIES, 0)
    for expense in expenses:
        totals[expense["category"]] += expense["cents"]
    total = sum(totals.values())
    latest = expenses[-limit:][::-1]
    components = []
    if notice is not None:
        components.append(a2ui.text(notice, tone="success", id="notice"))
    components += [
        a2ui.text(
            f"{len(expenses)} expenses, {_euros(total)} EUR in total.",
            tone="normal" if expenses else "muted",
            id="summary",
        ),
        a2ui.chart(
            list(CATEGORIES.values()),
            [totals[key] / 100 for key in CATEGORIES],
            kind="bar",
            title="EUR per category",
            id="totals",
        ),
        a2ui.table(
            ["#", "Date", "Category", "Amount (EUR)", "Description"],
            [
                [e["number"], e["date"], CATEGORIES[e["category"]], _euros(e["cents"]), e["text"]]
                for e in latest
            ],
            id="latest",
        ),
        a2ui.form(
            FORM_ID,
            [
                a2ui.select_field(
                    "category",
                    "Category",
                    options=list(CATEGORIES.items()),
                    default="travel",
                    required=True,
                ),
                a2ui.number_field(
                    "amount",
                    "Amount (EUR)",
                    minimum=0.01,
                    maximum=MAX_AMOUNT,
                    step=0.01,
                    required=True,
                ),
                a2ui.text_field(
                    "description", "Description", placeholder="What was it for?", required=False
                ),
            ],
            "Add",
            title="Add an expense",
            submit_tool="add_entry",
        ),
    ]
    return a2ui.document(*components, title="Expense report")


@tool
def report(
    limit: Annotated[
        int, Field(description="How many of the latest expenses to list", minimum=1, maximum=20)
    ] = 10,
) -> a2ui.Document:
    """Shows the expense report: totals per category, the latest expenses and a form to add one."""
    return _document(_load(), limit, None)


def _invalid(message: str, field: str) -> ToolFailure:
    return ToolFailure("invalid_input", message, {"field": field})


def _expense(values: a2ui.FormValues) -> tuple[str, int, str]:
    """The form's values as (category, cents, description), checked like any input."""
    unknown = sorted(set(values) - {"category", "amount", "description"})
    if unknown:
        raise _invalid(f"unknown form field '{unknown[0]}'", unknown[0])
    category = values.get("category")
    if not isinstance(category, str) or category not in CATEGORIES:
        raise _invalid(f"category must be one of {', '.join(CATEGORIES)}", "category")
    amount = values.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise _invalid("amount must be a number", "amount")
    if not math.isfinite(amount) or not 0.01 <= amount <= MAX_AMOUNT:
        raise _invalid(f"amount must be between 0.01 and {MAX_AMOUNT} EUR", "amount")
    cents = round(amount * 100)
    if abs(amount * 100 - cents) > 1e-6:
        raise _invalid("amount must have at most two decimals", "amount")
    description = values.get("description", "")
    if not isinstance(description, str):
        raise _invalid("description must be text", "description")
    description = " ".join(description.split())
    if len(description) > MAX_DESCRIPTION:
        raise _invalid(f"description must be at most {MAX_DESCRIPTION} characters", "description")
    return category, cents, description


@tool(input_schema=a2ui.FORM_SUBMISSION_SCHEMA)
def add_entry(componentId: str, values: a2ui.FormValues) -> a2ui.Document:
    """Adds an expense from the report's form and shows the updated report."""
    if componentId != FORM_ID:
        raise _invalid(
            f"this tool handles the form '{FORM_ID}', not '{componentId}'", "componentId"
        )
    category, cents, description = _expense(values)
    expenses = _load()
    if len(expenses) >= MAX_EXPENSES:
        raise ToolFailure("tool_error", f"the report is full ({MAX_EXPENSES} expenses)")
    number = expenses[-1]["number"] + 1 if expenses else 1
    expenses.append(
        {
            "number": number,
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "category": category,
            "cents": cents,
            "text": description,
        }
    )
    storage.put_json(EXPENSES, expenses)
    log.info(f"expense {number}: {_euros(cents)} EUR for {category}")
    notice = f"Added expense #{number}: {_euros(cents)} EUR for {CATEGORIES[category]}."
    return _document(expenses, 10, notice)
