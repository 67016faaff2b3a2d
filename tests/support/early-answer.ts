// A POST that declares a large body and sends only its start, then reads the answer: for a server that
// must refuse a body by its size without reading it. A client that writes the whole body races the
// server's early answer and its close (the write can meet ECONNRESET before the answer is read); this
// one waits for the answer with the rest of the body unsent, so an answer proves the server did not
// wait for it.
import { request } from "node:http";

export interface EarlyAnswer {
  status: number;
  body: unknown;
}

export function postDeclaring(
  url: string,
  headers: Record<string, string>,
  declaredBytes: number,
  start: Uint8Array,
  timeoutMs = 30_000,
): Promise<EarlyAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "POST",
      headers: { ...headers, "content-length": String(declaredBytes) },
      timeout: timeoutMs,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        req.destroy();
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // Not JSON: the text is the body.
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms with the body unsent`)));
    req.on("error", reject);
    req.write(start);
  });
}
