// Model replies as sanitised Markdown: marked renders, DOMPurify sanitises (a reply is
// untrusted text), highlight.js colours code blocks, each of which gets a copy button.
// The libraries are vendored into /vendor by scripts/vendor (no CDN).
import { marked } from "/vendor/marked.esm.js";
import DOMPurify from "/vendor/purify.es.mjs";
import hljs from "/vendor/highlight.min.js";
import { el } from "/app.js";

hljs.configure({ ignoreUnescapedHTML: true });
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
// Raw HTML in a reply is shown as text, never parsed: not even the sanitiser's inert
// parse of an <img> may fetch anything. DOMPurify still cleans what Markdown makes
// (javascript: links and the like).
// An image loads when it is shown, so a reply (prompt-injected by a page or file it
// read) could send the conversation to any server in an image URL: only inline data
// and this origin's own images load; any other image is shown as a link to click.
const loadable = (src) => {
  try {
    const u = new URL(src, location.href);
    return u.protocol === "data:" || u.origin === location.origin;
  } catch {
    return false;
  }
};
const imageAsLink = ({ href, text }) =>
  loadable(href) ? false : `<a href="${escapeHtml(href)}">${escapeHtml(text || "image")}</a>`;
marked.use({ gfm: true, breaks: false, renderer: { html: ({ text }) => escapeHtml(text), image: imageAsLink } });
// And whatever else might make an <img>: its source is dropped before it is shown.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.nodeName === "IMG" && !loadable(node.getAttribute("src") ?? "")) node.removeAttribute("src");
  if (node.nodeName === "IMG") node.removeAttribute("srcset");
});

/** Renders `text` as Markdown into `target` (replacing what it held). */
export function renderMarkdown(target, text) {
  target.innerHTML = DOMPurify.sanitize(marked.parse(text ?? ""), { USE_PROFILES: { html: true } });
  for (const code of target.querySelectorAll("pre > code")) {
    hljs.highlightElement(code);
    const pre = code.parentElement;
    pre.classList.add("code");
    const lang = [...code.classList].find((c) => c.startsWith("language-"))?.slice(9);
    const copy = el("button", { type: "button", class: "copy", "aria-label": "Copy code" }, "Copy");
    copy.addEventListener("click", () => copyText(copy, code.textContent));
    pre.prepend(el("div", { class: "code-bar" }, el("span", { class: "muted" }, lang ?? "code"), copy));
  }
  for (const a of target.querySelectorAll("a[href]")) {
    a.target = "_blank";
    a.rel = "noopener noreferrer";
  }
}

/** Copies `text` to the clipboard, saying so on `button`. */
export async function copyText(button, text) {
  const was = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed";
  }
  setTimeout(() => (button.textContent = was), 1500);
}
