/** Failover under load, ssl-on-portal (TLS passes through to the Portals), two-arm layout. See failover.ts. */
import { failoverSpec } from "./failover";

describe("failover under load: ssl-on-portal, two-arm", () => failoverSpec("two-arm", "ssl-on-portal"));
