//! Property tests of the registry wire parsers (also fuzzed in fuzz/, target `registry_wire`):
//! `WWW-Authenticate` challenges, `Link` pagination, tag pages and manifest references.

use ferry_registry::{
    ManifestRefs, manifest_references, next_link, parse_challenge, parse_tag_page,
};
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderValue, LINK};

fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn digest() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}"))
}

fn base() -> url::Url {
    url::Url::parse("http://127.0.0.1:5000/v2/org/app/tags/list?n=1000").unwrap()
}

fn link(value: &str) -> Result<Option<url::Url>, ferry_registry::RegistryError> {
    let mut h = HeaderMap::new();
    h.insert(LINK, HeaderValue::from_str(value).unwrap());
    next_link(&h, &base())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn challenges_round_trip(
        realm in "[ -~]{0,40}",
        service in "[ -~]{0,20}",
        scope in "[a-z/:,]{0,30}",
        upper in any::<bool>(),
    ) {
        let scheme = if upper { "BEARER" } else { "Bearer" };
        let header = format!(
            "{scheme} realm={},service={}, scope={}",
            quoted(&realm), quoted(&service), quoted(&scope)
        );
        let (s, p) = parse_challenge(&header).unwrap();
        prop_assert_eq!(s, "bearer");
        prop_assert_eq!(&p["realm"], &realm);
        prop_assert_eq!(&p["service"], &service);
        prop_assert_eq!(&p["scope"], &scope);
    }

    #[test]
    fn links_stay_on_the_registry(last in "[A-Za-z0-9._-]{1,20}", host in "127\\.0\\.[0-9]\\.[2-9]") {
        let next = link(&format!("</v2/org/app/tags/list?n=1000&last={last}>; rel=\"next\"")).unwrap().unwrap();
        prop_assert_eq!(next.origin(), base().origin());
        let want = format!("last={last}");
        prop_assert!(next.as_str().ends_with(&want));
        let away = format!("<http://{host}:5000/v2/org/app/tags/list?last={last}>; rel=\"next\"");
        prop_assert!(link(&away).is_err());
        prop_assert_eq!(link(&format!("</x?last={last}>; rel=\"prev\"")).unwrap(), None);
    }

    #[test]
    fn tag_pages_and_manifests(
        tags in proptest::collection::vec("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", 0..20),
        children in proptest::collection::vec(digest(), 0..5),
        layers in proptest::collection::vec(digest(), 0..5),
        config in digest(),
    ) {
        let page = serde_json::json!({ "name": "org/app", "tags": tags });
        prop_assert_eq!(parse_tag_page(page.to_string().as_bytes()).unwrap(), tags);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": children.iter().map(|d| serde_json::json!({"digest": d, "size": 1})).collect::<Vec<_>>(),
        });
        prop_assert_eq!(manifest_references(index.to_string().as_bytes()).unwrap(), ManifestRefs::Index(children.clone()));
        let image = serde_json::json!({
            "schemaVersion": 2,
            "config": {"digest": config},
            "layers": layers.iter().map(|d| serde_json::json!({"digest": d})).collect::<Vec<_>>(),
        });
        let mut want = vec![config.clone()];
        want.extend(layers.iter().cloned());
        prop_assert_eq!(manifest_references(image.to_string().as_bytes()).unwrap(), ManifestRefs::Blobs(want));
        // A descriptor whose digest is not sha256 hex is refused, never passed on as a path.
        let bad = serde_json::json!({"manifests": [{"digest": format!("{config}/../x")}]});
        prop_assert!(manifest_references(bad.to_string().as_bytes()).is_err());
    }
}
