// Web pages for openrouter:web_fetch, on 127.0.0.1: an article in the noise real pages
// carry (scripts, styles, navigation, a cookie banner, a footer), a redirect to it, a
// redirect loop, a page over the fetcher's byte cap, a PDF, an image, a 404 and a page
// that never answers. Every request is recorded.
import http from "node:http";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/web_fetch");
/** The article, and the text it reads as once turned into text, its links resolved
 * against `base` (the Rust tests read the same files). */
export const ARTICLE_HTML = readFileSync(path.join(FIXTURES, "article.html"), "utf8");
export const ARTICLE_TEXT = (base) => readFileSync(path.join(FIXTURES, "article.txt"), "utf8").replaceAll("BASE", base);

/** Over the web_fetch byte cap (5 MiB). */
export const HUGE_BYTES = 6 * 1024 * 1024;

export async function startWebPages() {
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method, path: req.url, headers: { ...req.headers } });
    const html = (status, body, headers = {}) => {
      res.writeHead(status, { "content-type": "text/html; charset=utf-8", ...headers });
      res.end(body);
    };
    switch (req.url) {
      case "/article": return html(200, ARTICLE_HTML);
      case "/moved": return html(302, "", { location: "/article" });
      case "/loop": return html(302, "", { location: "/loop" });
      case "/notes.txt": res.writeHead(200, { "content-type": "text/plain" }); return res.end("plain notes\nline two");
      case "/huge": {
        res.writeHead(200, { "content-type": "text/html" });
        const block = "<p>" + "x".repeat(1020) + "</p>";
        let sent = 0;
        const more = () => {
          while (sent < HUGE_BYTES) {
            sent += block.length;
            if (!res.write(block)) return res.once("drain", more);
          }
          res.end();
        };
        return more();
      }
      case "/paper.pdf": res.writeHead(200, { "content-type": "application/pdf" }); return res.end("%PDF-1.4\n%%EOF\n");
      case "/cat.png": res.writeHead(200, { "content-type": "image/png" }); return res.end(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
      case "/hang": return; // never answers
      default: return html(404, "<h1>Not found</h1>");
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    seen,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}
