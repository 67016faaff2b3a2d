// The GatewayError a call throws, so a test can assert on its code and details (any other error, or
// none at all, fails the test).
import { GatewayError } from "../../supabase/functions/_shared/errors.ts";

export function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a GatewayError");
}
