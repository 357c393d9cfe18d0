//! AdamW with its state in the open. The update is candle-nn's `AdamW` step for step (the same
//! formula and order of operations, decoupled weight decay), but candle-nn keeps its moments
//! private, and `--resume` has to write them to the checkpoint and read them back to continue
//! bit for bit.

use std::collections::BTreeMap;

use candle_core::{Tensor, Var};
pub use candle_nn::ParamsAdamW;

pub struct AdamW {
    pub params: ParamsAdamW,
    /// Variables by name, with their first and second moments.
    vars: Vec<(String, Var, Tensor, Tensor)>,
    pub step_t: u64,
}

impl AdamW {
    pub fn new(vars: BTreeMap<String, Var>, params: ParamsAdamW) -> candle_core::Result<Self> {
        let vars = vars
            .into_iter()
            .map(|(n, v)| {
                let z = v.as_tensor().zeros_like()?;
                Ok((n, v, z.clone(), z))
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            params,
            vars,
            step_t: 0,
        })
    }

    /// One update from the gradients of `loss`.
    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.step_t += 1;
        let p = &self.params;
        let (b1, b2) = (p.beta1, p.beta2);
        let scale_m = 1f64 / (1f64 - b1.powi(self.step_t as i32));
        let scale_v = 1f64 / (1f64 - b2.powi(self.step_t as i32));
        for (_, var, m, v) in &mut self.vars {
            let theta = var.as_tensor();
            let Some(g) = grads.get(theta) else { continue };
            let next_m = ((&*m * b1)? + (g * (1.0 - b1))?)?;
            let next_v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let next_theta = (theta * (1f64 - p.lr * p.weight_decay))?;
            let adjusted = (m_hat / (v_hat.sqrt()? + p.eps)?)?;
            let next_theta = (next_theta - (adjusted * p.lr)?)?;
            *m = next_m;
            *v = next_v;
            var.set(&next_theta)?;
        }
        Ok(())
    }

    /// The moments as named tensors (`m.NAME`, `v.NAME`), for a checkpoint.
    pub fn state(&self) -> std::collections::HashMap<String, Tensor> {
        let mut out = std::collections::HashMap::new();
        for (n, _, m, v) in &self.vars {
            out.insert(format!("m.{n}"), m.clone());
            out.insert(format!("v.{n}"), v.clone());
        }
        out
    }

    /// Restores the moments written by [`AdamW::state`].
    pub fn load_state(
        &mut self,
        state: &std::collections::HashMap<String, Tensor>,
        step_t: u64,
    ) -> Result<(), String> {
        for (n, var, m, v) in &mut self.vars {
            let get = |k: String| -> Result<Tensor, String> {
                let t = state
                    .get(&k)
                    .ok_or_else(|| format!("no optimizer tensor `{k}`"))?;
                if t.dims() != var.as_tensor().dims() {
                    return Err(format!("optimizer tensor `{k}` has shape {:?}", t.dims()));
                }
                t.to_device(var.device()).map_err(|e| e.to_string())
            };
            *m = get(format!("m.{n}"))?;
            *v = get(format!("v.{n}"))?;
        }
        self.step_t = step_t;
        Ok(())
    }
}
