// Expose `Py_3_12`-style cfgs so the crate can pick its event source per Python version.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
