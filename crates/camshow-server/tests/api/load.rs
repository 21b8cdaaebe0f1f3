//! A bounded load on loopback: 50 image swaps, 10 video jobs and 5 live
//! WebSocket clients at once, against one server with two workers. No
//! request may fail; the latencies are printed (docs/performance.md).

use std::sync::Arc;

use tungstenite::Message;

use super::live::{Heard, connect, listen, send, upload_source};
use super::*;

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.95))
}

#[test]
fn fifty_swaps_ten_video_jobs_and_five_live_clients_at_once() {
    let s = Arc::new(Server::start(|c| {
        c.workers = 2;
        c.max_uploads = 64;
        c.max_live = 5;
        c.max_jobs_per_client = 10;
    }));
    let d = s.dir.path().to_path_buf();
    let source = upload_source(&s, "t1.jpg");
    let picture = Arc::new(read(&sample("astronaut.png")));
    let video = Arc::new(read(&clip(&d, 1)));
    let frame = {
        let f = d.join("frame.jpg");
        image::open(sample("astronaut.png"))
            .unwrap()
            .resize(320, 320, image::imageops::FilterType::Triangle)
            .to_rgb8()
            .save(&f)
            .unwrap();
        Arc::new(read(&f))
    };
    let started = Instant::now();
    let mut swaps = Vec::new();
    for _ in 0..50 {
        let (s, source, picture) = (s.clone(), source.clone(), picture.clone());
        swaps.push(std::thread::spawn(move || {
            let t = Instant::now();
            let r = post_form(
                &s,
                "/v1/swap",
                &[
                    ("source_id", None, source.as_bytes()),
                    ("target", Some("a.png"), &picture),
                    ("format", None, b"jpg"),
                ],
            );
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            assert_eq!(r.header("x-camshow-faces-swapped"), Some("1"));
            t.elapsed().as_secs_f64()
        }));
    }
    let mut jobs = Vec::new();
    for _ in 0..10 {
        let (s, source, video) = (s.clone(), source.clone(), video.clone());
        jobs.push(std::thread::spawn(move || {
            let t = Instant::now();
            let r = post_form(
                &s,
                "/v1/jobs",
                &[
                    ("source_id", None, source.as_bytes()),
                    ("target", Some("c.mp4"), &video),
                ],
            );
            assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
            let id = r.json()["id"].as_str().unwrap().to_string();
            let last = events(&s, &id).pop().unwrap().1;
            assert_eq!(last["state"], "done", "{last}");
            t.elapsed().as_secs_f64()
        }));
    }
    let mut lives = Vec::new();
    for _ in 0..5 {
        let (s, source, frame) = (s.clone(), source.clone(), frame.clone());
        lives.push(std::thread::spawn(move || {
            let mut ws = connect(&s, &format!("/v1/live?source={source}&fps=5")).unwrap();
            let mut h = Heard::default();
            let mut rtt = Vec::new();
            // 20 frames, each sent once the previous one is back (as the page does).
            for i in 1..=20u64 {
                let t = Instant::now();
                send(&mut ws, Message::binary(frame.to_vec()));
                let until = Instant::now() + Duration::from_mins(2);
                while h.frames.last().and_then(|f| f.0["input"].as_u64()) != Some(i) {
                    assert!(Instant::now() < until, "live frame {i} never came back");
                    listen(&mut ws, &mut h, Duration::from_millis(20));
                }
                rtt.push(t.elapsed().as_secs_f64());
            }
            assert!(h.json.iter().all(|v| v["type"] != "error"), "{:?}", h.json);
            rtt
        }));
    }
    let swap_times: Vec<f64> = swaps.into_iter().map(|t| t.join().unwrap()).collect();
    let job_times: Vec<f64> = jobs.into_iter().map(|t| t.join().unwrap()).collect();
    let live_rtt: Vec<f64> = lives.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let total = started.elapsed().as_secs_f64();
    let (sp50, sp95) = percentiles(swap_times);
    let (jp50, jp95) = percentiles(job_times);
    let (lp50, lp95) = percentiles(live_rtt);
    println!(
        "load: all done in {total:.1} s; 50 swaps p50 {sp50:.2} s p95 {sp95:.2} s; 10 video jobs p50 {jp50:.2} s p95 {jp95:.2} s; 5 live clients × 20 frames round trip p50 {:.0} ms p95 {:.0} ms",
        lp50 * 1000.0,
        lp95 * 1000.0
    );
    let m = String::from_utf8(get(&s, "/v1/metrics").body).unwrap();
    assert!(m.contains("camshow_swap_seconds_count 50\n"), "{m}");
    assert!(m.contains("camshow_jobs{state=\"done\"} 10\n"), "{m}");
    assert!(m.contains("camshow_live_frames_total 100\n"), "{m}");
}
