// A server started on a port picked for it (shared/free-port.ts): where another process bound that port
// first, the start is tried again on another, at most three starts in all; any other failure is thrown at once.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, startOnFreePort } from "../../shared/free-port.ts";

/** A real listener on `port`; fails in Node's words ("listen EADDRINUSE: address already in use ...") when it is taken. */
function listen(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

const open: net.Server[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** Ports in this order: each given `taken` is held by a listener first. */
async function ports(taken: number) {
  const held = await Promise.all(Array.from({ length: taken }, async () => {
    const s = await listen(0);
    open.push(s);
    return (s.address() as net.AddressInfo).port;
  }));
  const given: number[] = [];
  return {
    given,
    pick: async () => {
      const port = held.shift() ?? await freePort();
      given.push(port);
      return port;
    },
  };
}

describe("startOnFreePort", () => {
  it("starts again on another port when the one picked was taken first", async () => {
    const { given, pick } = await ports(2);
    const taken: number[] = [];
    const server = await startOnFreePort(listen, { pick, onTaken: (port) => taken.push(port) });
    open.push(server);
    expect(given).toHaveLength(3);
    expect(taken).toEqual(given.slice(0, 2));
    expect((server.address() as net.AddressInfo).port).toBe(given[2]);
  });

  it("gives up after three starts, with the last one's words", async () => {
    const { given, pick } = await ports(3);
    const error = await startOnFreePort(listen, { pick }).then(() => null, (e: Error) => e);
    expect(given).toHaveLength(3);
    expect(error?.message).toBe(`listen EADDRINUSE: address already in use 127.0.0.1:${given[2]}`);
  });

  it("does not start again for any other failure", async () => {
    const { given, pick } = await ports(0);
    await expect(startOnFreePort(() => Promise.reject(new Error("no such binary")), { pick })).rejects.toThrow("no such binary");
    expect(given).toHaveLength(1);
  });
});
