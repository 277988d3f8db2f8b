"""The app's one script, run once when the page loads (``create_app`` passes it to Gradio).

It watches the page and keeps three things right that Gradio's own markup gets wrong:

- a new answer in the chat comes into view at its top (its verdict or notice first), instead
  of Gradio's scroll to the bottom of the conversation (the Chatbot's ``autoscroll`` is off);
- a chat message's ``aria-label`` is its text, not its HTML source;
- a results file's download link is named by its file ("Download report.md (1.8 KB)"),
  not by its size alone.
"""

from __future__ import annotations

SCRIPT = """() => {
  let seen = 0;
  const scroller = (el) => {
    for (let e = el.parentElement; e; e = e.parentElement) {
      if (/(auto|scroll)/.test(getComputedStyle(e).overflowY) && e.scrollHeight > e.clientHeight) return e;
    }
    return null;
  };
  const reveal = (card) => {
    const box = scroller(card);
    if (box) box.scrollTop += card.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
    const head = card.firstElementChild || card;
    const r = head.getBoundingClientRect();
    if (r.top < 0 || r.bottom > window.innerHeight) head.scrollIntoView({block: "nearest"});
  };
  const relabel = (el, label) => { if (el.getAttribute("aria-label") !== label) el.setAttribute("aria-label", label); };
  const update = () => {
    const chat = document.getElementById("chat");
    if (chat) {
      const cards = chat.querySelectorAll(".qa-card");
      if (cards.length > seen) reveal(cards[cards.length - 1]);
      seen = cards.length;
      chat.querySelectorAll("[aria-label*='s message: ']").forEach((el) => {
        const label = el.getAttribute("aria-label");
        const words = el.innerText.replace(/\\s+/g, " ").trim();
        const said = words.length > 300 ? words.slice(0, 300) + "…" : words;
        relabel(el, label.slice(0, label.indexOf("message: ") + 9) + said);
      });
    }
    document.querySelectorAll("#eval-files a[download], #draft-files a[download]").forEach((a) => {
      relabel(a, `Download ${a.getAttribute("download")} (${a.textContent.replace("⇣", "").trim()})`);
    });
  };
  new MutationObserver(update).observe(document.body, {childList: true, subtree: true, attributes: true,
                                                       attributeFilter: ["aria-label"]});
}"""
