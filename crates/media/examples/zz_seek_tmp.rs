use std::time::Instant;
use stylize_media::{probe, FrameReader};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let info = probe(std::path::Path::new(&a[1])).unwrap();
    eprintln!("start {} dur {:?} count {:?} exact {}", info.start_secs, info.container_duration_secs, info.frame_count, info.frame_count_exact);
    for s in a[2..].iter() {
        let t = Instant::now();
        let mut r = FrameReader::open_at(&info, s.parse().unwrap()).unwrap();
        let f = r.next().map(|f| f.unwrap());
        eprintln!("{s}: {:?} {:?} in {:?}", f.as_ref().map(|f| f.index), f.as_ref().map(|f| f.pts), t.elapsed());
    }
}
