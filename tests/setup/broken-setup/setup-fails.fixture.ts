// Its setup throws: its tests never run, and vitest counts none of them failed.
import { beforeAll, expect, it } from "vitest";

beforeAll(() => {
  throw new Error("the fixture's setup failed");
});

it("would pass", () => expect(1).toBe(1));
it("would pass too", () => expect(2).toBe(2));
