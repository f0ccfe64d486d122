//! Serves the IoT example: `cargo run -p tickcast-example-iot [-- ADDR]`.
//!
//! ```sh
//! curl -N '127.0.0.1:8090/sse?sites=north&min_celsius=30'
//! curl -X POST 127.0.0.1:8090/readings -d '{"sensor":"t-1","site":"north","celsius":31}'
//! ```

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:8090")
        .parse()?;
    let hub = tickcast_example_iot::hub()?;
    println!("serving ws://{addr}/ws, http://{addr}/sse, POST http://{addr}/readings");
    warp::serve(tickcast_example_iot::routes(hub))
        .run(addr)
        .await;
    Ok(())
}
