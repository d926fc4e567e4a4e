/** Mode → handler factory. The core builds one handler per listener from here (and again on each reload). */
import type { HandlerFactory } from "./contract";
import { createHttpHandler } from "./http";
import { createTcpHandler } from "./tcp";

export const HANDLERS: Record<"tcp" | "http", HandlerFactory> = {
  tcp: createTcpHandler,
  http: createHttpHandler,
};
