//! Per-request and per-client limits (pixels, video length, jobs per
//! client) and CORS, which is off unless origins are allow-listed.

use super::*;

#[test]
fn pictures_and_videos_past_the_limits_are_refused_before_any_work() {
    let s = Server::start(|c| {
        c.max_pixels = 100_000;
        c.max_video = Duration::from_millis(1500);
    });
    let d = s.dir.path();
    // The astronaut is 512×512: past 100 000 pixels.
    post_form(
        &s,
        "/v1/sources",
        &[("photo", Some("a.png"), &read(&sample("astronaut.png")))],
    )
    .refused(413, "too_large", "at most 100000");
    // A 256×256 clip of 2 s: small enough, but too long.
    let long = read(&clip(d, 2));
    let small_source = d.join("small.png");
    image::open(sample("astronaut.png"))
        .unwrap()
        .resize(250, 250, image::imageops::FilterType::Triangle)
        .save(&small_source)
        .unwrap();
    let small = read(&small_source);
    post_form(
        &s,
        "/v1/jobs",
        &[
            ("source", Some("s.png"), &small),
            ("target", Some("c.mp4"), &long),
        ],
    )
    .refused(413, "too_large", "at most 2 s");
    // A 1 s clip of the same size is taken.
    let short = read(&clip(d, 1));
    let r = post_form(
        &s,
        "/v1/jobs",
        &[
            ("source", Some("s.png"), &small),
            ("target", Some("c.mp4"), &short),
        ],
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(events(&s, &id).pop().unwrap().1["state"], "done");
    // Nothing of the refused requests is left.
    assert!(files_under(&s.data().join("tmp")).is_empty());
    assert_eq!(std::fs::read_dir(s.data().join("jobs")).unwrap().count(), 1);
}

#[test]
fn one_client_cannot_fill_the_queue() {
    let s = Server::start(|c| c.max_jobs_per_client = 1);
    let d = s.dir.path();
    let clip = clip(d, 2);
    let first = submit(&s, &clip);
    let r = post_form(
        &s,
        "/v1/jobs",
        &[
            ("source", Some("s.jpg"), &read(&sample("t1.jpg"))),
            ("target", Some("c.mp4"), &read(&clip)),
        ],
    );
    r.refused(429, "too_many_jobs", "at most 1 per client");
    // Once it has ended, the client may submit again.
    assert_eq!(events(&s, &first).pop().unwrap().1["state"], "done");
    let again = submit(&s, &clip);
    assert_eq!(events(&s, &again).pop().unwrap().1["state"], "done");
}

fn with_origin(s: &Server, method: &str, path: &str, origin: &str) -> Reply {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(s.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .body(())
        .unwrap();
    reply(agent().run(req))
}

#[test]
fn cors_is_off_unless_the_origin_is_allow_listed() {
    let app = "https://app.example.com";
    let closed = Server::start(|_| {});
    let r = with_origin(&closed, "GET", "/v1/settings", app);
    r.refused(403, "forbidden", "this machine's own pages");
    assert_eq!(r.header("access-control-allow-origin"), None);
    let open = Server::start(|c| c.cors_origins = vec![app.to_string()]);
    // The browser's preflight, then the request itself.
    let pre = with_origin(&open, "OPTIONS", "/v1/jobs", app);
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some(app));
    assert!(
        pre.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(
        pre.header("access-control-allow-headers")
            .unwrap()
            .contains("Authorization")
    );
    let r = with_origin(&open, "GET", "/v1/settings", app);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(app));
    assert_eq!(r.header("vary"), Some("Origin"));
    // Any other origin is still refused, with no CORS header.
    for other in [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "null",
    ] {
        let r = with_origin(&open, "GET", "/v1/settings", other);
        assert_eq!(r.status, 403, "{other}");
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert_eq!(
            with_origin(&open, "OPTIONS", "/v1/jobs", other).header("access-control-allow-origin"),
            None
        );
    }
}

#[test]
fn an_upload_abandoned_midway_leaves_nothing() {
    use std::io::Write;
    let s = Server::start(|_| {});
    let addr = s.base.trim_start_matches("http://").to_string();
    for path in ["/v1/jobs", "/v1/sources", "/v1/swap"] {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            c,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b0\r\nContent-Length: 1000000\r\n\r\n--b0\r\nContent-Disposition: form-data; name=\"target\"; filename=\"t\"\r\n\r\n"
        )
        .unwrap();
        c.write_all(&vec![7u8; 200_000]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(c);
    }
    // The server notices the closed connections and removes what they sent.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<PathBuf> = ["jobs", "tmp", "sources"]
            .iter()
            .flat_map(|d| files_under(&s.data().join(d)))
            .collect();
        let folders = std::fs::read_dir(s.data().join("jobs")).unwrap().count();
        if left.is_empty() && folders == 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "left behind: {left:?}, {folders} job folders"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(&s, "/v1/health").status, 200);
}

#[test]
fn sources_and_scans_expire_like_results_but_not_under_a_running_job() {
    let s = Server::start(|c| {
        c.retention = camshow_server::jobs::Retention {
            keep: Duration::from_secs(3),
            quota: u64::MAX,
            every: Duration::from_millis(100),
        };
        c.store = with_recognizer();
    });
    let t1 = read(&sample("t1.jpg"));
    let clip = read(&clip(s.dir.path(), 6));
    let r = post_form(&s, "/v1/faces/scan", &[("target", Some("t1.jpg"), &t1)]);
    assert_eq!(r.status, 201);
    let scan = r.json()["id"].as_str().unwrap().to_string();
    let r = post_form(&s, "/v1/sources", &[("photo", Some("t1.jpg"), &t1)]);
    assert_eq!(r.status, 201);
    let source = r.json()["id"].as_str().unwrap().to_string();
    // A long job keeps them while it runs.
    let r = post_form(
        &s,
        "/v1/jobs",
        &[
            ("source_id", None, source.as_bytes()),
            ("target", Some("c.mp4"), &clip),
        ],
    );
    assert_eq!(r.status, 202);
    let job = r.json()["id"].as_str().unwrap().to_string();
    wait_running(&s, &job);
    std::thread::sleep(Duration::from_millis(3500));
    if get(&s, &format!("/v1/jobs/{job}")).json()["state"] == "running" {
        assert_eq!(get(&s, &format!("/v1/sources/{source}")).status, 200);
    }
    assert_eq!(events(&s, &job).pop().unwrap().1["state"], "done");
    // Then they go, files and all.
    let until = Instant::now() + Duration::from_secs(20);
    while get(&s, &format!("/v1/sources/{source}")).status == 200
        || get(&s, &format!("/v1/scans/{scan}")).status == 200
    {
        assert!(
            Instant::now() < until,
            "the source or scan was never removed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(files_under(&s.data().join("sources")).is_empty());
    assert!(files_under(&s.data().join("scans")).is_empty());
}
