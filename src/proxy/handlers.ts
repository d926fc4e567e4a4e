/** Mode → handler factory. The core builds one handler per listener from here (and again on each reload). */
import type { HandlerFactory } from "./contract";
import { createHttpHandler } from "./http";
import { tlsTicketRenewal } from "./http/tls";
import { createTcpHandler } from "./tcp";
import { tcpRelay } from "./tcp-handles";
import { tlsEngine } from "./http/tls-handles";

export const HANDLERS: Record<"tcp" | "http", HandlerFactory> = {
  tcp: createTcpHandler,
  http: createHttpHandler,
};

/** How the handlers move bytes on this Node (both fall back when Node lacks the internals): the `started` log
 * line reports it. */
export const engineChoices = (): { tcpRelay: "handles" | "streams"; tlsEngine: "handles" | "streams"; tlsTicketRenewal: boolean } => ({
  tcpRelay: tcpRelay.mode,
  tlsEngine: tlsEngine.mode,
  tlsTicketRenewal: tlsTicketRenewal(),
});
