// socket.io on Node, the reference for bench.mjs: clients join by
// connecting; GET /publish?count=N broadcasts N events to all of them
// (io.emit: encoded once per broadcast), each the object tickcast's
// clients get, with an offset as last argument like connection state
// recovery adds. Prints its port.
import { createServer } from "node:http";
import { Server } from "socket.io";

const http = createServer();
const io = new Server(http, { transports: ["websocket"], serveClient: false });
let seq = 0;
http.on("request", (req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname !== "/publish") return;
  const count = Number(url.searchParams.get("count") ?? 1);
  const body = JSON.parse(url.searchParams.get("body"));
  for (let i = 0; i < count; i++) {
    seq += 1;
    const offset = `1-${seq}`;
    io.emit(
      "pattern_detected",
      { type: "event", offset, subs: ["s1"], priority: "high", event_type: "pattern_detected", data: body },
      offset,
    );
  }
  res.end("ok");
});
http.listen(0, "127.0.0.1", () => console.log(http.address().port));
