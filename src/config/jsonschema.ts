import { z } from "zod";
import { RuntimeConfigSchema } from "./schema";

/** JSON Schema (draft 2020-12) of the runtime config as the proxy reads it (`ctera-lb schema`). */
export function runtimeConfigJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(RuntimeConfigSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return { title: "ctera-portal-lb runtime config", ...schema };
}
