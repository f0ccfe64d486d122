//! `GET /client/<module>.js`: the JavaScript client (clients/js), its
//! compiled ES modules built into the binary, so that the demo page and
//! any web page can `import { TickcastClient } from
//! "<server>/client/tickcast.js"` without npm.

use warp::filters::BoxedFilter;
use warp::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE};
use warp::http::HeaderValue;
use warp::reply::Response;
use warp::{Filter, Reply};

/// Every module of `clients/js/dist` (the committed build; CI checks it
/// matches the sources), by file name. `tickcast.js` is the entry point.
pub const MODULES: [(&str, &str); 8] = [
    (
        "tickcast.js",
        include_str!("../../../clients/js/dist/tickcast.js"),
    ),
    (
        "backoff.js",
        include_str!("../../../clients/js/dist/backoff.js"),
    ),
    (
        "errors.js",
        include_str!("../../../clients/js/dist/errors.js"),
    ),
    (
        "links.js",
        include_str!("../../../clients/js/dist/links.js"),
    ),
    (
        "offset.js",
        include_str!("../../../clients/js/dist/offset.js"),
    ),
    (
        "subscription.js",
        include_str!("../../../clients/js/dist/subscription.js"),
    ),
    (
        "token.js",
        include_str!("../../../clients/js/dist/token.js"),
    ),
    (
        "types.js",
        include_str!("../../../clients/js/dist/types.js"),
    ),
];

/// The route; other names under `/client/` fall through (404).
pub fn route() -> BoxedFilter<(Response,)> {
    warp::path!("client" / String)
        .and(warp::get())
        .and_then(|name: String| async move {
            let source = MODULES
                .iter()
                .find(|(module, _)| *module == name)
                .map(|(_, source)| *source)
                .ok_or_else(warp::reject::not_found)?;
            let mut response = source.into_response();
            let headers = response.headers_mut();
            // Module scripts are refused unless served as JavaScript.
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            );
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            // Browsers fetch module scripts with CORS: pages of any origin
            // may import this public, static code (whether they may then
            // connect is `http.allowed_origins`' business).
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            Ok::<_, warp::Rejection>(response)
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::MODULES;

    /// `dist/` gains a module when the client does: it must be served too.
    #[test]
    fn every_module_of_the_build_is_served() {
        let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/js/dist");
        let mut built: Vec<String> = std::fs::read_dir(&dist)
            .expect("clients/js/dist")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".js"))
            .collect();
        built.sort();
        let mut served: Vec<String> = MODULES.iter().map(|(name, _)| (*name).to_owned()).collect();
        served.sort();
        assert_eq!(built, served);
    }

    /// Every relative import of a served module names a served module.
    #[test]
    fn imports_resolve_to_served_modules() {
        for (name, source) in MODULES {
            for line in source.lines() {
                let Some(rest) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let target = rest.split('"').next().unwrap_or_default();
                assert!(
                    MODULES.iter().any(|(module, _)| *module == target),
                    "{name} imports {target}, which is not served"
                );
            }
        }
    }
}
