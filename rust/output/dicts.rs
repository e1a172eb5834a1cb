//! The events as Python dicts (`tracer.data`, `load()`): a sink of `event::walk`.

use crate::output::event::{render_all, walk, Form, Key, Sink, Value};
use crate::output::snapshot::SnapData;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// Collects one dict per event; its form of a Python value is the object itself.
pub struct Dicts<'py> {
    py: Python<'py>,
    names: Vec<Bound<'py, PyString>>,
    event: Bound<'py, PyDict>,
    events: Vec<Bound<'py, PyDict>>,
}

impl<'py> Form<'py> for Dicts<'py> {
    type Value = Bound<'py, PyAny>;

    fn value(obj: &Bound<'py, PyAny>) -> PyResult<Self::Value> {
        Ok(obj.clone())
    }

    /// A copy: the caller may change it, the snapshot may be written again.
    fn func_args(args: &Bound<'py, PyDict>) -> PyResult<Self::Value> {
        Ok(args.copy()?.into_any())
    }

    fn id(obj: &Bound<'py, PyAny>) -> PyResult<Self::Value> {
        Ok(obj.str()?.into_any())
    }
}

impl<'py> Sink for Dicts<'py> {
    type Value = Bound<'py, PyAny>;
    type Error = PyErr;

    #[inline(always)]
    fn begin(&mut self) -> PyResult<()> {
        self.event = PyDict::new(self.py);
        Ok(())
    }

    #[inline(always)]
    fn field(&mut self, key: Key, value: Value<'_, Self::Value>) -> PyResult<()> {
        let (d, key) = (&self.event, key.name());
        match value {
            Value::Int(v) => d.set_item(key, v),
            Value::UInt(v) => d.set_item(key, v),
            Value::Us(ns) => d.set_item(key, ns as f64 / 1000.0),
            Value::Str(s) => d.set_item(key, s),
            Value::NameArgs(name) => {
                let args = PyDict::new(self.py);
                args.set_item("name", name)?;
                d.set_item(key, args)
            }
            Value::Func(f) => match self.names.get(f as usize) {
                Some(name) => d.set_item(key, name),
                None => d.set_item(key, "<unknown>"),
            },
            Value::Obj(v) => d.set_item(key, v),
        }
    }

    /// The dict's items as given, but `pid` and `tid`, which stay the tracer's.
    fn members(&mut self, raw: &Self::Value) -> PyResult<()> {
        let d = &self.event;
        let ids = (d.get_item("pid")?, d.get_item("tid")?);
        if let Ok(raw) = raw.cast::<PyDict>() {
            for (k, v) in raw.iter() {
                d.set_item(k, v)?;
            }
        }
        if let (Some(pid), Some(tid)) = ids {
            d.set_item("pid", pid)?;
            d.set_item("tid", tid)?;
        }
        Ok(())
    }

    #[inline(always)]
    fn end(&mut self) -> PyResult<()> {
        self.events.push(self.event.clone());
        Ok(())
    }
}

/// The events as Python dicts, metadata events first.
pub fn to_events<'py>(
    py: Python<'py>,
    data: &SnapData,
    pid: i64,
    process_name: &str,
    thread_names: &[(u64, String)],
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let rendered = render_all::<Dicts<'py>>(py, data, 0)?;
    let mut s = Dicts {
        py,
        names: data.funcs.iter().map(|f| PyString::new(py, &f.name)).collect(),
        event: PyDict::new(py),
        events: Vec::with_capacity(data.entries + thread_names.len() + 1),
    };
    walk(&mut s, data, &rendered, (pid, process_name, thread_names), |_| {})?;
    Ok(s.events)
}
