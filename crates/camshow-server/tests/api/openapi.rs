//! `/v1/openapi.json`: made from the handlers, it lists exactly what is
//! served; and the independent API fuzzer schemathesis, run against it,
//! finds no 5xx and no answer that departs from it.

use super::*;

/// Every endpoint, as (method, path).
const ENDPOINTS: &[(&str, &str)] = &[
    ("get", "/v1/capabilities"),
    ("get", "/v1/docs"),
    ("post", "/v1/faces/scan"),
    ("get", "/v1/health"),
    ("get", "/v1/jobs"),
    ("post", "/v1/jobs"),
    ("delete", "/v1/jobs/{id}"),
    ("get", "/v1/jobs/{id}"),
    ("get", "/v1/jobs/{id}/events"),
    ("get", "/v1/jobs/{id}/result"),
    ("get", "/v1/live"),
    ("get", "/v1/live/camera"),
    ("get", "/v1/metrics"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/scans/{id}"),
    ("get", "/v1/scans/{id}/people/{n}"),
    ("get", "/v1/settings"),
    ("patch", "/v1/settings"),
    ("put", "/v1/settings"),
    ("post", "/v1/sources"),
    ("delete", "/v1/sources/{id}"),
    ("get", "/v1/sources/{id}"),
    ("get", "/v1/sources/{id}/faces/{n}"),
    ("post", "/v1/swap"),
];

fn method(s: &Server, m: &str, path: &str) -> Reply {
    let url = s.url(path);
    let a = agent();
    reply(match m {
        "get" => a.get(&url).call(),
        "delete" => a.delete(&url).call(),
        "post" => a.post(&url).send_empty(),
        "put" => a.put(&url).send_empty(),
        "patch" => a.patch(&url).send_empty(),
        other => panic!("{other}"),
    })
}

#[test]
fn the_document_lists_exactly_what_is_served() {
    let s = Server::start(|_| {});
    let doc = get(&s, "/v1/openapi.json").json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut listed: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(|m| (m.clone(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    listed.sort();
    let mut expected: Vec<(String, String)> = ENDPOINTS
        .iter()
        .map(|(m, p)| ((*m).to_string(), (*p).to_string()))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    for (m, p) in ENDPOINTS {
        let op = &doc["paths"][p][m];
        assert!(op["responses"]["4XX"].is_object(), "{m} {p}");
        assert!(
            !op["summary"].as_str().unwrap_or_default().is_empty(),
            "{m} {p} has no summary"
        );
        // Served: an unknown id is "not found", never "no such endpoint".
        let path = p.replace("{id}", &"0".repeat(24)).replace("{n}", "0");
        let r = method(&s, m, &path);
        let text = String::from_utf8_lossy(&r.body);
        assert!(
            r.status != 405 && !text.contains("no such endpoint"),
            "{m} {p}: {} {text}",
            r.status
        );
    }
    // The settings schema is the one the settings file is checked with.
    let settings = &doc["components"]["schemas"]["Settings"];
    let own = Settings::json_schema();
    assert_eq!(
        settings["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        own["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
    );
    assert!(
        !doc.to_string().contains("#/$defs/"),
        "every $ref resolves in the document"
    );
    // Another method on a served path: 405 with the methods it takes.
    let r = method(&s, "post", "/v1/health");
    r.refused(405, "method_not_allowed", "GET");
    assert_eq!(r.header("allow"), Some("GET"));
    let r = method(&s, "post", &format!("/v1/jobs/{}", "0".repeat(24)));
    assert_eq!(r.header("allow"), Some("DELETE, GET"));
    method(&s, "get", "/v1/nothing").refused(404, "not_found", "no such endpoint");
    // The docs page and its script.
    let page = get(&s, "/v1/docs");
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("/docs.js"));
    assert_eq!(get(&s, "/docs.js").status, 200);
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let tool = test_tool("schemathesis");
    // With the recognizer's stand-in, so that face scans run too.
    let s = Server::start(|c| c.store = with_recognizer());
    let d = s.dir.path();
    // Real ids for the operations that need them: a source, a finished job, a scan.
    let r = post_form(
        &s,
        "/v1/sources",
        &[("photo", Some("t1.jpg"), &read(&sample("t1.jpg")))],
    );
    assert_eq!(r.status, 201);
    let source = r.json()["id"].as_str().unwrap().to_string();
    let r = post_form(
        &s,
        "/v1/jobs",
        &[
            ("source_id", None, source.as_bytes()),
            ("target", Some("a.png"), &read(&sample("astronaut.png"))),
        ],
    );
    assert_eq!(r.status, 202);
    let job = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(events(&s, &job).pop().unwrap().1["state"], "done");
    let r = post_form(
        &s,
        "/v1/faces/scan",
        &[("target", Some("t1.jpg"), &read(&sample("t1.jpg")))],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let scan = r.json()["id"].as_str().unwrap().to_string();
    let config = d.join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[operations]]
include-path-regex = "^/v1/sources/"
parameters = {{ "path.id" = "{source}", "path.n" = 0 }}

[[operations]]
include-path-regex = "^/v1/jobs/"
parameters = {{ "path.id" = "{job}" }}

[[operations]]
include-path-regex = "^/v1/scans/"
parameters = {{ "path.id" = "{scan}", "path.n" = 0 }}
"#
        ),
    )
    .unwrap();
    // Every check but "schema-valid requests are accepted": whether an
    // upload is accepted depends on its bytes being a picture with a face,
    // which no schema can say. The WebSocket endpoints are tested by a
    // WebSocket client (live.rs).
    let out = Command::new(tool)
        .current_dir(d)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &s.url("/v1/openapi.json")])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args([
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "1",
            "--no-shrink",
        ])
        .args([
            "--exclude-path-regex",
            "^/v1/live",
            "--request-timeout",
            "120",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = text
        .lines()
        .rev()
        .find(|l| l.contains("generated"))
        .unwrap_or_default();
    println!("schemathesis: {}", summary.trim());
    assert!(text.contains("passed"), "{text}");
}
