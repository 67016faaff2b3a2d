// Vitest global setup: one PostgreSQL server for the run and a template database to clone.
// `npm test` (scripts/test.ts) starts the server itself and passes it in EVE_TEST_PG_URL; a bare
// `npx vitest` starts one here.
import type { TestProject } from "vitest/node";
import { startPostgres, type PostgresServer } from "../../shared/db/postgres-server.ts";
import { createTemplateDatabase } from "./template.ts";

export default async function setup(project: TestProject) {
  let server: PostgresServer | undefined;
  let serverUrl = process.env.EVE_TEST_PG_URL;
  let template = process.env.EVE_TEST_TEMPLATE;
  let features = { pgCron: process.env.EVE_TEST_PG_CRON === "1", pgTap: process.env.EVE_TEST_PG_TAP === "1" };
  let engine = process.env.EVE_TEST_PG_ENGINE ?? "external";
  if (!serverUrl || !template) {
    server = await startPostgres();
    serverUrl = server.url;
    features = server.features;
    engine = server.engine;
    template = await createTemplateDatabase(serverUrl);
  }
  project.provide("pg", { serverUrl, template, engine, ...features });
  return async () => {
    await server?.stop();
  };
}
