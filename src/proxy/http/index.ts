/**
 * HTTP/1.1 engine for http-mode VIPs (placeholder: the full engine lands in the following commits).
 * The core calls createHttpHandler once per listener (and again on every reload).
 */
import type { Socket } from "node:net";
import type { HandlerFactory } from "../contract";

export const createHttpHandler: HandlerFactory = (_listener, _vip) => {
  return (client: Socket) => {
    client.end("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  };
};
