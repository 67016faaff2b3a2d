// A POST on a connection of its own (no keep-alive agent): for timing a request from its first byte,
// and for seeing a connection refused while a server is still starting.
import { request } from "node:http";

/** The answer's status and body, or the request's error (code ECONNREFUSED: nothing listens yet). */
export function postOnce(url: string, headers: Record<string, string>, body: string) {
  const u = new URL(url);
  const bytes = Buffer.from(body);
  return new Promise<{ status: number; body: string } | NodeJS.ErrnoException>((resolve) => {
    const req = request({
      host: u.hostname,
      port: Number(u.port),
      path: u.pathname,
      method: "POST",
      agent: false,
      headers: { ...headers, "content-type": "application/json", "content-length": String(bytes.byteLength) },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on("error", resolve);
    });
    req.on("error", resolve);
    req.end(bytes);
  });
}
