"""The browser app: build_demo(...) -> gr.Blocks. No retrieval logic of its own."""

from __future__ import annotations

import html

import gradio as gr

from assistant.errors import AssistantError
from assistant.pipeline import Assistant, Response


def render_response(response: Response) -> str:
    """HTML for a response; every piece of document text is escaped."""
    parts = []
    for p in response.passages:
        parts.append(
            f'<article class="passage"><h3>[{p.rank}] {html.escape(p.title)}</h3>'
            f'<p class="cite">{html.escape(p.doc_id)}, characters {p.start}–{p.end}, score {p.score:.3f}</p>'
            f'<p class="text">{html.escape(p.text)}</p></article>'
        )
    return "\n".join(parts) or "<p>No passages found.</p>"


def build_demo(assistant: Assistant) -> gr.Blocks:
    """The Gradio app over one loaded assistant."""

    def ask(question: str, k: int) -> str:
        try:
            return render_response(assistant.ask(question, k=int(k)))
        except AssistantError as exc:
            gr.Warning(str(exc))
            return ""

    with gr.Blocks(title="Source-grounded assistant") as demo:
        gr.Markdown("# Ask the sources\nEvery passage is quoted verbatim from the corpus.")
        question = gr.Textbox(label="Question", elem_id="question", lines=1)
        k = gr.Slider(1, 10, value=5, step=1, label="Number of passages", elem_id="k")
        button = gr.Button("Ask", variant="primary", elem_id="ask")
        output = gr.HTML(elem_id="passages")
        button.click(ask, [question, k], output, api_name="ask")
        question.submit(ask, [question, k], output)
    return demo
