// The maintenance function served alone by Deno (scripts/serve-functions.ts) against a test database,
// as the eve_gateway role, with the test stacks' database bounds (stack-env.ts) and the service key
// given; `env` adds the providers' endpoints and key secrets. Its log lines go to `log`, and any about
// database trouble to the test output.
import { type FunctionsServer, startFunctionsServer } from "../../scripts/serve-functions.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { echoDatabaseTrouble, TEST_STACK_DB_ENV } from "../support/stack-env.ts";

export async function serveMaintenance(options: {
  dbUrl: string;
  serviceKey: string;
  env: Record<string, string>;
  log?: (line: string) => void;
}): Promise<{ server: FunctionsServer; url: string }> {
  const server = await startFunctionsServer({
    port: 0,
    only: ["maintenance"],
    env: {
      ...TEST_STACK_DB_ENV,
      SUPABASE_DB_URL: await gatewayRoleUrl(options.dbUrl),
      GATEWAY_DB_URL: "",
      SUPABASE_SERVICE_ROLE_KEY: options.serviceKey,
      SUPABASE_SECRET_KEYS: "",
      ...options.env,
    },
    log: (line) => {
      options.log?.(line);
      echoDatabaseTrouble("maintenance", line);
    },
  });
  return { server, url: `${server.url}/functions/v1/maintenance` };
}
