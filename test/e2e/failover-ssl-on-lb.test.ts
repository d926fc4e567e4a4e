/** Failover under load, ssl-on-lb (TLS ends on the load balancer), one-arm layout. See failover.ts. */
import { failoverSpec } from "./failover";

describe("failover under load: ssl-on-lb, one-arm", () => failoverSpec("one-arm", "ssl-on-lb"));
