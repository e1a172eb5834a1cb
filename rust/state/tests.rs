use super::*;
use crate::buffers::thread::ThreadState;
use crate::ffi::held::{self, Held};
use pyo3::prelude::*;

pub(super) fn with_py(f: impl FnOnce(Python<'_>)) {
    Python::initialize();
    Python::attach(f);
}

fn new_shared() -> std::sync::Arc<Shared> {
    Shared::new(State::new(100))
}

fn thread(tid: u64) -> ThreadState {
    ThreadState::new(tid, tid, None)
}

#[test]
fn one_access_at_a_time() {
    with_py(|py| {
        let shared = new_shared();
        let mut acc = shared.access(py).expect("first access");
        acc.state().mismatches = 1;
        assert!(shared.access(py).is_none(), "a second guard while one is open");
        drop(acc);
        assert_eq!(shared.access(py).expect("after close").state().mismatches, 1);
    });
}

#[test]
fn with_python_closes_the_guard_meanwhile() {
    with_py(|py| {
        let shared = new_shared();
        let acc = shared.access(py).expect("access");
        let (inner, acc) = acc.with_python(|py| {
            let mut other = shared.access(py).expect("open while the first is lent out");
            other.state().mismatches = 7;
            other.state().mismatches
        });
        assert_eq!(inner, 7);
        assert_eq!(acc.expect("back").state().mismatches, 7);
    });
}

#[test]
fn current_is_dropped_when_its_thread_state_is_freed() {
    with_py(|py| {
        let shared = new_shared();
        let mut acc = shared.access(py).expect("access");
        let keep = acc.threads().1.push(thread(1));
        let gone = acc.threads().1.push(thread(2));
        let acc = match acc.select(std::ptr::null_mut()) {
            Ok(_) => panic!("null is no thread state"),
            Err(acc) => acc,
        };
        let cur = acc.select(gone).ok().expect("a state of the list");
        let ((), cur) = cur.with_python(|py| {
            let mut other = shared.access(py).expect("access");
            other.threads().1.retain(|t| t.tid == 1);
        });
        assert!(cur.is_none(), "the calling thread's state was freed meanwhile");
        let acc = shared.access(py).expect("access");
        let mut cur = acc.select(keep).ok().expect("kept");
        assert_eq!(cur.thread().tid, 1);
        let (_, cur) = cur.with_python(|_| ());
        assert_eq!(cur.expect("nothing freed").thread().tid, 1);
    });
}

fn no_hot_event(py: Python<'_>) -> bool {
    // SAFETY: a test standing in for the interpreter's callback: the event is
    // dropped at once, with no guard made and no Python code run meanwhile.
    unsafe { Event::from_fast_slot(py) }.is_none()
}

#[test]
fn events_are_refused_while_a_guard_is_open() {
    with_py(|py| {
        let shared = new_shared();
        start_collecting(py, &shared);
        let mut acc = access_collecting(py).expect("the collecting tracer");
        let th = acc.threads().1.push(thread(5));
        let cur = acc.select(th).ok().expect("selected");
        fill_fast_slot(&cur);
        assert!(no_hot_event(py), "refused while the guard is open");
        drop(cur);
        // SAFETY: as in `no_hot_event`, the event is the only reference while it lives.
        let mut ev = unsafe { Event::from_fast_slot(py) }.expect("the fast slot's event");
        ev.parts().1.tid += 1;
        let mut acc = access_collecting(py).expect("access");
        assert_eq!(acc.threads().1.iter().map(|t| t.tid).collect::<Vec<_>>(), vec![6]);
        acc.threads().1.retain(|_| false);
        drop(acc);
        assert!(no_hot_event(py), "freeing a state empties the fast slot");

        // Refused while any guard is open, on any tracer; back when the last closes.
        let mut acc = access_collecting(py).expect("access");
        let th = acc.threads().1.push(thread(9));
        let cur = acc.select(th).ok().expect("selected");
        fill_fast_slot(&cur);
        let other = new_shared();
        let other_acc = other.access(py).expect("another tracer's guard");
        drop(cur);
        assert!(no_hot_event(py), "another guard is still open");
        drop(other_acc);
        assert!(!no_hot_event(py), "the last guard closed");
        stop_collecting(py, &shared);
        assert!(no_hot_event(py), "the collecting tracer changed");
    });
}

#[test]
fn held_objects_are_released_at_safe_points() {
    with_py(|py| {
        let getrefcount = py.import("sys").and_then(|s| s.getattr("getrefcount")).expect("sys.getrefcount");
        let refs = |o: &Py<pyo3::types::PyList>| getrefcount.call1((o,)).and_then(|n| n.extract::<isize>()).unwrap();
        let list = pyo3::types::PyList::empty(py).unbind();
        let before = refs(&list);
        let held = Held::new(list.clone_ref(py));
        assert_eq!(refs(&list), before + 1);
        drop(held);
        assert_eq!(refs(&list), before + 1, "not released by the drop itself");
        let shared = new_shared();
        let acc = shared.access(py).expect("access");
        held::release_pending(py);
        assert_eq!(refs(&list), before + 1, "not released while a guard is open");
        drop(acc);
        assert_eq!(refs(&list), before, "released when the guard closes");
    });
}
