/** Public API: the config model (typed inputs, render, validation, presets). The Pulumi component is exported here too. */
export * from "./config";
export * from "./component";
