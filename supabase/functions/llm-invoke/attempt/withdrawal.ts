// A provider's 404 for a model is confirmed before the model is marked for every project: models.get
// for it on the same key must answer the same kind of 404. Rare (once per withdrawal), so worth a
// call; one at a time per model in a worker, whose answer every request waiting on it takes (each no
// longer than its own deadline). Not bound to one caller's signal: the others still need its answer.
import type { PhaseTimer } from "../../_shared/server-timing.ts";
import type { UpstreamClient } from "../../_shared/upstream/port.ts";
import { type Clock, settledWithin } from "../clock.ts";

/** Whether `model` is still not found for this key (false: the key sees it, or the provider could not say). */
export type WithdrawalCheck = (
  client: UpstreamClient,
  apiKey: string,
  model: string,
  within: { deadline: number; timing: PhaseTimer },
) => Promise<boolean>;

/** The worker's check, with the models.get calls under way per model (shared by the requests that meet the 404). */
export function withdrawalCheck(clock: Pick<Clock, "now">, attemptTimeoutMs: number): WithdrawalCheck {
  const confirming = new Map<string, Promise<boolean>>();
  return async (client, apiKey, model, { deadline, timing }) => {
    let asked = confirming.get(model);
    if (asked === undefined) {
      const timeoutMs = Math.max(1, attemptTimeoutMs);
      asked = client.getModel({ apiKey, model, timeoutMs })
        .then((got) => !got.ok && got.error.class === "model_withdrawn", () => false)
        .finally(() => confirming.delete(model));
      confirming.set(model, asked);
    }
    const left = Math.max(1, deadline - clock.now());
    return await timing.time("upstream", () => settledWithin(asked!, left, false));
  };
}
