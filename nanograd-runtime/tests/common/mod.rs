//! Reads the PyTorch fixtures written by `tests/fixtures/gen_*.py`.
#![allow(dead_code)]

use serde::Deserialize;
use std::collections::BTreeMap;

/// A tensor as the fixture scripts write it: a shape and its row-major data in f64.
#[derive(Debug, Deserialize)]
pub struct TensorData {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl TensorData {
    /// The data converted to the element type under test.
    pub fn to<T: nanograd_runtime::Float>(&self) -> Vec<T> {
        self.data.iter().map(|&v| T::from_f64(v)).collect()
    }
}

/// One op call recorded by `fixture_lib.case`.
#[derive(Debug, Deserialize)]
pub struct Case {
    #[serde(default)]
    pub args: BTreeMap<String, serde_json::Value>,
    pub inputs: BTreeMap<String, TensorData>,
    pub upstream: TensorData,
    pub output: TensorData,
    #[serde(default)]
    pub grads: BTreeMap<String, TensorData>,
    #[serde(default)]
    pub extra: BTreeMap<String, TensorData>,
}

impl Case {
    pub fn input(&self, name: &str) -> &TensorData {
        self.inputs
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no input `{name}`"))
    }
    pub fn grad(&self, name: &str) -> &TensorData {
        self.grads
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no gradient for `{name}`"))
    }
    pub fn extra(&self, name: &str) -> &TensorData {
        self.extra
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no extra `{name}`"))
    }
    pub fn arg(&self, name: &str) -> f64 {
        self.args
            .get(name)
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("fixture has no numeric arg `{name}`"))
    }
}

/// Loads `tests/fixtures/<group>.json`.
pub fn load(group: &str) -> BTreeMap<String, Case> {
    let path = format!("{}/tests/fixtures/{group}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e} (run tests/fixtures/generate.sh)"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Loads one case of a group.
pub fn case(group: &str, name: &str) -> Case {
    load(group)
        .remove(name)
        .unwrap_or_else(|| panic!("fixture group `{group}` has no case `{name}`"))
}
