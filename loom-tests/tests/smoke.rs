#![cfg(loom)]
use gilock::RawFairMutex;
use lock_api::RawMutex;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
#[test]
fn smoke() {
    loom::model(|| {
        let m = Arc::new(RawFairMutex::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (0..2).map(|_| { let m = m.clone(); let inside = inside.clone(); loom::thread::spawn(move || {
            let g = m.lock();
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
            inside.fetch_sub(1, Ordering::SeqCst);
            unsafe { m.unlock(g) };
        })}).collect();
        let timer = loom::thread::spawn(|| { gilock::model::fire_timeouts(); });
        for t in ts { t.join().unwrap(); }
        timer.join().unwrap();
    });
}
