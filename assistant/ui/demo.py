"""The layout of the app: build_demo(...) -> gr.Blocks with the Ask, Check-a-quote, Evaluate
and Library tabs. The source view is a plain route beside it (assistant.ui.server)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from assistant.pipeline import Assistant, LiveAssistant
from assistant.ui.handlers import COLUMN_WIDTHS, ROW_COLUMNS, SKIP_LABEL, Handlers

CONCURRENCY = 4  # questions answered at once; the model call dominates, so more only queues in torch
QUEUE_SIZE = 64
MAX_PASSAGES = 20
INTRO = ("# Ask the sources\nEvery answer is a sentence quoted **verbatim** from the documents, with a link to "
         "the exact place it comes from. When the documents don't answer, the assistant says so.")
COPY_JS = """(citation) => {
  if (citation && navigator.clipboard) { navigator.clipboard.writeText(citation); }
  return citation;
}"""


def build_demo(assistant: Assistant | LiveAssistant, *, results_dir: Path | None = None) -> gr.Blocks:
    """The Gradio app over a loaded Assistant.

    ``results_dir`` receives one folder per evaluation run (default: the system temp folder).
    The queue is configured here; serve the result with ``assistant.ui.create_app``.
    """
    handlers = Handlers(assistant, results_dir)
    current = handlers.live.current()
    default_k = min(current.settings.k, MAX_PASSAGES)
    default_eval_k = min(current.settings.eval_k, MAX_PASSAGES)

    with gr.Blocks(title="Ask the sources", analytics_enabled=False) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Ask", id="ask", elem_id="tab-ask"):
                # A new answer is scrolled into view at its top by assistant/ui/script.py (autoscroll off).
                # Messages are HTML built by render.py, in which no document text can be markdown,
                # LaTeX or markup; Gradio's copy buttons would copy that HTML, so there are none.
                chat = gr.Chatbot(label="Conversation", elem_id="chat", height=520, layout="panel",
                                  latex_delimiters=[], buttons=[], feedback_options=None, autoscroll=False,
                                  placeholder="Ask a question about the documents. Follow-up questions "
                                              "such as “and when was it adopted?” use the conversation.")
                turns = gr.State([])
                with gr.Row(equal_height=True):
                    question = gr.Textbox(label="Question", elem_id="question", lines=1, max_lines=6, scale=5,
                                          placeholder="Ask about the documents",
                                          max_length=20_000)
                    ask = gr.Button("Ask", variant="primary", elem_id="ask", scale=1, min_width=80)
                with gr.Row():
                    # Editable (a disabled box is not focusable) and without Gradio's copy icon, which
                    # would take the box's <label> for itself; "Copy citation" does the copying.
                    citation = gr.Textbox(label="Citation of the latest answer", elem_id="citation", lines=2,
                                          interactive=True, scale=5, min_width=240)
                    with gr.Column(scale=1, min_width=160):
                        copy = gr.Button("Copy citation", elem_id="copy-citation", size="sm")
                        clear = gr.Button("New conversation", elem_id="clear", size="sm")
                with gr.Accordion("Options", open=False, elem_id="ask-options") as options:
                    k = gr.Slider(1, MAX_PASSAGES, value=default_k, step=1, label="Number of passages",
                                  elem_id="k")
                    doc_ids = gr.Dropdown(handlers.documents(), value=[], multiselect=True, elem_id="docs",
                                          label="Only search these documents",
                                          info="Leave empty to search every document.")
                with gr.Accordion("Latest response as JSON", open=False):
                    response_json = gr.JSON(label="Response", elem_id="response-json")
                ask_args = {"fn": handlers.ask, "inputs": [question, chat, turns, k, doc_ids],
                            "outputs": [question, chat, turns, citation, response_json]}
                ask.click(**ask_args, api_name="ask")
                question.submit(**ask_args, api_name=False)
                copy.click(handlers.copied, inputs=[citation], outputs=None, js=COPY_JS, api_name=False)
                clear.click(handlers.clear, None, [chat, turns, citation, response_json], api_name="clear")
                # The documents of the live index, as the Library lists them: on each visit and
                # whenever the options are opened, so a document indexed since start-up is there.
                demo.load(handlers.document_choices, None, doc_ids, api_name=False, show_progress="hidden")
                options.expand(handlers.document_choices, None, doc_ids, api_name=False, show_progress="hidden")
                chat.clear(handlers.clear, None, [chat, turns, citation, response_json], api_name=False)

            with gr.Tab("Check a quote", id="quote", elem_id="tab-quote"):
                quote = gr.Textbox(label="Quote", elem_id="quote", lines=4, max_length=200_000,
                                   placeholder="Paste a quote to see whether the documents say exactly that, "
                                               "or a draft to check every quotation in it.")
                with gr.Row():
                    check = gr.Button("Check quote", variant="primary", elem_id="check-quote")
                    check_all = gr.Button("Check every quotation", elem_id="check-draft")
                quote_result = gr.HTML(elem_id="quote-result", js_on_load=None)
                draft_files = gr.File(label="Download the table", elem_id="draft-files", file_count="multiple",
                                      interactive=False, visible=False)  # shown with a draft's table
                with gr.Accordion("Result as JSON", open=False):
                    quote_json = gr.JSON(label="Quote check", elem_id="quote-json")
                check_args = {"fn": handlers.check_quote, "inputs": [quote], "outputs": [quote_result, quote_json]}
                check.click(**check_args, api_name="check_quote")
                quote.submit(**check_args, api_name=False)
                for event in (check.click, quote.submit):  # a draft's downloads go with its table
                    event(lambda: gr.File(value=None, visible=False), None, draft_files, api_name=False, queue=False)
                check_all.click(handlers.check_draft, [quote], [quote_result, quote_json, draft_files],
                                api_name="check_draft").success(
                    lambda files: gr.File(visible=bool(files)), draft_files, draft_files, api_name=False, queue=False)

            with gr.Tab("Evaluate", id="evaluate", elem_id="tab-evaluate"):
                gr.Markdown("Upload a question set: JSONL with `id`, `question`, `answers` and `sources` per "
                            "line, or CSV with those columns (several answers or sources separated by `|`). "
                            "Questions with no answers are expected to be declined.")
                with gr.Row():
                    question_set = gr.File(label="Question set (JSONL or CSV)", elem_id="eval-file",
                                           file_types=[".jsonl", ".csv", ".json"], type="filepath")
                    with gr.Column():
                        eval_k = gr.Slider(1, MAX_PASSAGES, value=default_eval_k, step=1,
                                           label="Passages per question (k)", elem_id="eval-k")
                        skip_invalid = gr.Checkbox(False, label=SKIP_LABEL, elem_id="eval-skip",
                                                   info="Run the valid questions of a file with bad lines; "
                                                        "each line left out is listed.")
                run = gr.Button("Run evaluation", variant="primary", elem_id="run-eval")
                summary = gr.HTML(elem_id="eval-summary", js_on_load=None)
                table = gr.Dataframe(headers=list(ROW_COLUMNS), label="Per question (failures first)",
                                     elem_id="eval-table", interactive=False, wrap=True, show_search="search",
                                     column_widths=list(COLUMN_WIDTHS))
                files = gr.File(label="Results files", elem_id="eval-files", file_count="multiple",
                                interactive=False)
                with gr.Accordion("Summary as JSON", open=False):
                    summary_json = gr.JSON(label="Summary", elem_id="eval-json")
                # The session's runs ({"label", "dir"} each), any two compared as `assistant eval --compare` does.
                runs = gr.State([])
                gr.Markdown("### Compare two runs of this session\nPer-metric deltas (B − A), the paired test "
                            "and the questions that flipped.", elem_id="compare-intro")
                with gr.Row():
                    run_a = gr.Dropdown([], label="Run A", elem_id="run-a", scale=1)
                    run_b = gr.Dropdown([], label="Run B", elem_id="run-b", scale=1)
                compare = gr.Button("Compare runs", elem_id="compare-runs")
                comparison = gr.HTML(elem_id="eval-compare", js_on_load=None)
                # A file that is not a valid question set is explained once, beside the upload: as soon
                # as it is uploaded (or the box is ticked), and again if Run is pressed anyway.
                for event in (question_set.upload, skip_invalid.input):
                    event(lambda path, skip: None, [question_set, skip_invalid], None, api_name=False,
                          validator=handlers.check_upload, show_progress="hidden")
                run.click(handlers.evaluate, [question_set, eval_k, runs, skip_invalid],
                          [summary, table, files, summary_json, runs], api_name="evaluate", concurrency_limit=1,
                          validator=handlers.check_question_set
                          ).success(handlers.run_choices, runs, [run_a, run_b], api_name=False, show_progress="hidden")
                compare.click(handlers.compare, [run_a, run_b, runs], comparison, api_name="compare")

            with gr.Tab("Library", id="library", elem_id="tab-library") as library_tab:
                refresh = gr.Button("Refresh status", elem_id="refresh-library", size="sm")
                library = gr.HTML(elem_id="library", js_on_load=None)
                library_tab.select(handlers.library, None, library, api_name=False)
                refresh.click(handlers.library, None, library, api_name="library")

    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo

