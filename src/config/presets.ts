/**
 * The guide's two designs as presets: the VIP tables of "Load balancing CTERA Portal" (Loadbalancer.org),
 * with CTERA's own health probe (/admin/startup). A preset is data; render() applies the user's overrides.
 */
import type { Design } from "./inputs";

export interface PresetVirtualService {
  name: string;
  mode: "tcp" | "http";
  /** TCP VIPs: passthrough ports. HTTP VIPs: plain ports. */
  ports: number[];
  /** HTTP VIPs: ports where TLS ends on the load balancer. */
  tlsPorts: number[];
  /** Port translation to the real servers; undefined: the port the client hit. */
  serverPort?: number;
  /** HTTP VIPs: the plain ports redirect to the first TLS port. */
  redirectToHttps: boolean;
  clientIp: "none" | "x-forwarded-for" | "proxy-v2";
  healthCheck: { type: "https-get" | "connect"; port?: number; path: string };
}

/** CTERA's documented probe: an HTTPS GET of /admin/startup on the Portal's 443. */
const PORTAL_PROBE = { type: "https-get", port: 443, path: "/admin/startup" } as const;

export const PRESETS: Record<Design, PresetVirtualService[]> = {
  // SSL termination on CTERA Portal: one TCP VIP, TLS passes through to the servers' own ports.
  "ssl-on-portal": [
    {
      name: "CTERA_Portal",
      mode: "tcp",
      ports: [443, 995, 8443],
      tlsPorts: [],
      redirectToHttps: false,
      clientIp: "none",
      healthCheck: PORTAL_PROBE,
    },
  ],
  // SSL termination on the load balancer: two HTTP VIPs (80/443 → 80, 8080/8443 → 8080) and CTTP passed through.
  "ssl-on-lb": [
    {
      name: "CTERA_Portal_Web_1",
      mode: "http",
      ports: [80],
      tlsPorts: [443],
      serverPort: 80,
      redirectToHttps: true,
      clientIp: "x-forwarded-for",
      healthCheck: PORTAL_PROBE,
    },
    {
      name: "CTERA_Portal_Web_2",
      mode: "http",
      ports: [8080],
      tlsPorts: [8443],
      serverPort: 8080,
      redirectToHttps: true,
      clientIp: "x-forwarded-for",
      healthCheck: PORTAL_PROBE,
    },
    {
      name: "CTERA_Portal_CTTP",
      mode: "tcp",
      ports: [995],
      tlsPorts: [],
      redirectToHttps: false,
      clientIp: "none",
      healthCheck: { type: "connect", path: "/admin/startup" },
    },
  ],
};

/** Designs that terminate TLS on the load balancer and so need a certificate and key. */
export function designNeedsTls(design: Design): boolean {
  return PRESETS[design].some((vs) => vs.tlsPorts.length > 0);
}
