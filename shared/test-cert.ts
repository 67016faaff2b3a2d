// A certificate authority and a server certificate for 127.0.0.1 and localhost, made at run time with
// openssl (Debian's, on PATH), so a test or a benchmark serves TLS that a spawned Deno trusts through
// DENO_CERT (the authority's file) and nothing else does. The authority is apart from the server's
// certificate: rustls, Deno's TLS, refuses a certificate authority used as the server's own.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface TestCert {
  /** The server's private key and certificate (PEM). */
  key: string;
  cert: string;
  /** The authority's certificate file: DENO_CERT for a Deno that must trust the server. */
  caFile: string;
  /** Removes the files. */
  remove(): void;
}

export function makeTestCert(): TestCert {
  const dir = mkdtempSync(path.join(tmpdir(), "eve-test-cert-"));
  const at = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", at("ca.key"), "-out", at("ca.pem"), "-days", "2", "-subj", "/CN=eve test authority");
  openssl("req", ...ec, "-keyout", at("server.key"), "-out", at("server.csr"), "-subj", "/CN=localhost");
  writeFileSync(
    at("server.ext"),
    "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
  );
  openssl(
    "x509", "-req", "-in", at("server.csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial",
    "-out", at("server.pem"), "-days", "2", "-extfile", at("server.ext"),
  );
  return {
    key: readFileSync(at("server.key"), "utf8"),
    cert: readFileSync(at("server.pem"), "utf8"),
    caFile: at("ca.pem"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
