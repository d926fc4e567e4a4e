// A minimal Portal stand-in for the HA netns test: HTTP on <address>:<port>, every answer names the server
// and the client address it saw. Usage: node portal.js <name> <address> <port>
"use strict";
const http = require("node:http");
const [name, address, port] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  req.resume();
  res.setHeader("content-type", "application/json");
  res.setHeader("connection", "close");
  res.end(JSON.stringify({ server: name, remoteAddress: req.socket.remoteAddress }));
});
server.listen(Number(port), address, () => console.log(JSON.stringify({ listening: `${address}:${port}`, name })));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
