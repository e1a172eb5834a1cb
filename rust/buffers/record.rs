//! The fixed-size record stored for every event.
//!
//! A function event is written once, when the function returns, as a complete slice
//! (start tick + duration). Rare events that carry Python data (instants, counters,
//! objects, raw dicts, function arguments) keep that data in the thread's payload
//! slab and store its index here, so the ring itself holds no Python references.

/// 24 bytes per event (upstream VizTracer uses 88).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Record {
    /// Start tick of a slice, or the tick of an instant-like event.
    pub ts: u64,
    /// Duration in ticks (slices only).
    pub dur: u64,
    /// Function id for slices; unused for payload-only events.
    pub func: u32,
    /// Kind in the top two bits, payload index + 1 in the rest (0: no payload).
    meta: u32,
}

const _: () = assert!(std::mem::size_of::<Record>() == 24);

const KIND_SHIFT: u32 = 30;
const PAYLOAD_MASK: u32 = (1 << KIND_SHIFT) - 1;
/// Largest payload index a record can refer to.
pub const MAX_PAYLOAD: u32 = PAYLOAD_MASK - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A finished function: `ph: "X"`.
    Complete = 0,
    /// A function still running when tracing stopped: `ph: "B"`.
    Begin = 1,
    /// An event fully described by its payload (instant, counter, object, raw).
    Payload = 2,
}

impl Record {
    #[inline(always)]
    fn pack(kind: Kind, payload: Option<u32>) -> u32 {
        ((kind as u32) << KIND_SHIFT) | (payload.map_or(0, |i| i + 1) & PAYLOAD_MASK)
    }

    #[inline(always)]
    pub fn complete(ts: u64, dur: u64, func: u32, payload: Option<u32>) -> Self {
        Record { ts, dur, func, meta: Self::pack(Kind::Complete, payload) }
    }

    pub fn begin(ts: u64, func: u32, payload: Option<u32>) -> Self {
        Record { ts, dur: 0, func, meta: Self::pack(Kind::Begin, payload) }
    }

    pub fn payload_event(ts: u64, payload: u32) -> Self {
        Record { ts, dur: 0, func: 0, meta: Self::pack(Kind::Payload, Some(payload)) }
    }

    #[inline(always)]
    pub fn kind(&self) -> Kind {
        match self.meta >> KIND_SHIFT {
            0 => Kind::Complete,
            1 => Kind::Begin,
            _ => Kind::Payload,
        }
    }

    #[inline(always)]
    pub fn payload(&self) -> Option<u32> {
        match self.meta & PAYLOAD_MASK {
            0 => None,
            p => Some(p - 1),
        }
    }

    /// The tick at which the record was written: records of one thread are in this order.
    #[inline(always)]
    pub fn written_at(&self) -> u64 {
        self.ts.wrapping_add(self.dur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_roundtrips() {
        let r = Record::complete(10, 5, 7, None);
        assert_eq!((r.kind(), r.payload(), r.func, r.written_at()), (Kind::Complete, None, 7, 15));
        let r = Record::complete(10, 5, 7, Some(0));
        assert_eq!(r.payload(), Some(0));
        let r = Record::begin(3, 9, Some(MAX_PAYLOAD));
        assert_eq!((r.kind(), r.payload()), (Kind::Begin, Some(MAX_PAYLOAD)));
        let r = Record::payload_event(4, 12);
        assert_eq!((r.kind(), r.payload(), r.ts), (Kind::Payload, Some(12), 4));
    }
}
