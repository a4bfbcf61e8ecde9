//! Modules: values that own named parameters, as PyTorch's `nn.Module` and MLX's
//! `nn.Module` do, without inheritance: a layer says how to visit its arrays, and
//! [`ModuleExt`] builds everything else (listing, updating, freezing, casting, saving and
//! loading) on that.

use ingot::{Array, DType, Error, Result, Tree};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What a named array of a module is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Differentiated and updated by optimizers.
    Trainable,
    /// A parameter held fixed (frozen); `unfreeze` makes it trainable again.
    Frozen,
    /// State that is saved but never trained (batch norm's running statistics).
    Buffer,
}

/// One named array of a module and its role.
#[derive(Clone, Debug)]
pub struct Param {
    pub value: Array,
    pub role: Role,
}

impl Param {
    /// A trainable parameter.
    pub fn new(value: Array) -> Param {
        Param {
            value,
            role: Role::Trainable,
        }
    }
    /// A buffer: saved with the module, never trained.
    pub fn buffer(value: Array) -> Param {
        Param {
            value,
            role: Role::Buffer,
        }
    }
}

/// A layer or a model. Implementors visit their own parameters under their names and their
/// children's under "child.name"; [`visit_child`] and [`visit_child_mut`] do the prefixing.
pub trait Module {
    /// Calls `f` with each parameter and buffer and its name relative to this module, in a
    /// fixed order.
    fn visit(&self, f: &mut dyn FnMut(&str, &Param));
    /// The same, with the parameters open to change.
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param));
    /// Train (true) or evaluation mode. Layers that behave differently (dropout, batch
    /// norm) keep the flag; containers pass it to their children.
    fn set_training(&mut self, _on: bool) {}
}

/// A module with one input and one output, which is what [`crate::Sequential`] chains.
pub trait Unary: Module + CloneUnary {
    fn forward(&self, x: &Array) -> Result<Array>;
}

/// Lets a `Box<dyn Unary>` be cloned (a model is cloned to differentiate it).
pub trait CloneUnary {
    fn clone_unary(&self) -> Box<dyn Unary>;
}

impl<T: Unary + Clone + 'static> CloneUnary for T {
    fn clone_unary(&self) -> Box<dyn Unary> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn Unary> {
    fn clone(&self) -> Self {
        self.clone_unary()
    }
}

/// Visits `child`'s parameters as "`name`.inner".
pub fn visit_child<M: Module + ?Sized>(name: &str, child: &M, f: &mut dyn FnMut(&str, &Param)) {
    child.visit(&mut |n, p| f(&format!("{name}.{n}"), p));
}

/// Visits `child`'s parameters mutably as "`name`.inner".
pub fn visit_child_mut<M: Module + ?Sized>(
    name: &str,
    child: &mut M,
    f: &mut dyn FnMut(&str, &mut Param),
) {
    child.visit_mut(&mut |n, p| f(&format!("{name}.{n}"), p));
}

/// Everything a module offers beyond visiting, for every [`Module`].
pub trait ModuleExt: Module {
    /// Every parameter and buffer by name (PyTorch's `state_dict`).
    fn parameters(&self) -> BTreeMap<String, Array> {
        let mut out = BTreeMap::new();
        self.visit(&mut |n, p| {
            out.insert(n.to_string(), p.value.clone());
        });
        out
    }

    /// The trainable parameters by name: what [`value_and_grad`] differentiates.
    fn trainable_parameters(&self) -> BTreeMap<String, Array> {
        let mut out = BTreeMap::new();
        self.visit(&mut |n, p| {
            if p.role == Role::Trainable {
                out.insert(n.to_string(), p.value.clone());
            }
        });
        out
    }

    /// Each name's role.
    fn roles(&self) -> BTreeMap<String, Role> {
        let mut out = BTreeMap::new();
        self.visit(&mut |n, p| {
            out.insert(n.to_string(), p.role);
        });
        out
    }

    /// The parameters as a nested tree: "layers.0.weight" is
    /// `Map{layers: Map{0: Map{weight: Leaf}}}`.
    fn parameter_tree(&self) -> Tree {
        nest(&self.parameters())
    }

    /// How many scalars the parameters (not the buffers) hold.
    fn num_parameters(&self) -> usize {
        let mut n = 0;
        self.visit(&mut |_, p| {
            if p.role != Role::Buffer {
                n += p.value.shape().iter().product::<usize>();
            }
        });
        n
    }

    /// Replaces the named arrays. Every name must be one of the module's and every array
    /// must have the shape and dtype of the one it replaces; on an error nothing changes.
    fn update(&mut self, new: &BTreeMap<String, Array>) -> Result<()> {
        let current = self.parameters();
        for (name, a) in new {
            let Some(old) = current.get(name) else {
                return Err(Error::invalid(
                    "Module::update",
                    format!("no parameter named {name:?}{}", suggest(name, &current)),
                ));
            };
            if old.shape() != a.shape() || old.dtype() != a.dtype() {
                return Err(Error::invalid(
                    "Module::update",
                    format!(
                        "{name}: {:?} {} does not replace {:?} {}",
                        a.shape(),
                        a.dtype(),
                        old.shape(),
                        old.dtype()
                    ),
                ));
            }
        }
        self.visit_mut(&mut |n, p| {
            if let Some(a) = new.get(n) {
                p.value = a.clone();
            }
        });
        Ok(())
    }

    /// Freezes every parameter whose name `pick` accepts (buffers stay buffers).
    fn freeze_where(&mut self, pick: &dyn Fn(&str) -> bool) {
        self.visit_mut(&mut |n, p| {
            if p.role == Role::Trainable && pick(n) {
                p.role = Role::Frozen;
            }
        });
    }

    /// Makes every frozen parameter whose name `pick` accepts trainable again.
    fn unfreeze_where(&mut self, pick: &dyn Fn(&str) -> bool) {
        self.visit_mut(&mut |n, p| {
            if p.role == Role::Frozen && pick(n) {
                p.role = Role::Trainable;
            }
        });
    }

    /// Freezes every parameter.
    fn freeze(&mut self) {
        self.freeze_where(&|_| true);
    }

    /// Makes every parameter trainable.
    fn unfreeze(&mut self) {
        self.unfreeze_where(&|_| true);
    }

    /// Train mode (dropout drops, batch norm uses and updates batch statistics).
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode.
    fn eval_mode(&mut self) {
        self.set_training(false);
    }

    /// Casts every floating parameter and buffer to `dtype` (a floating dtype).
    fn cast(&mut self, dtype: DType) -> Result<()> {
        if !dtype.is_float() {
            return Err(Error::invalid(
                "Module::cast",
                format!("{dtype} is not a floating dtype"),
            ));
        }
        let mut err = None;
        self.visit_mut(&mut |n, p| {
            if p.value.dtype().is_float() && p.value.dtype() != dtype && err.is_none() {
                match ingot::astype(&p.value, dtype) {
                    Ok(a) => p.value = a,
                    Err(e) => err = Some(format!("{n}: {e}")),
                }
            }
        });
        match err {
            Some(e) => Err(Error::invalid("Module::cast", e)),
            None => Ok(()),
        }
    }

    /// Computes every parameter and buffer (after an optimizer step, so the next step's
    /// graph starts from arrays, not from the whole history).
    fn eval_parameters(&self) -> Result<()> {
        let all: Vec<Array> = self.parameters().into_values().collect();
        ingot::eval(&all)
    }

    /// Writes every parameter and buffer to a safetensors file under its name.
    fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        let params = self.parameters();
        ingot::io::save_safetensors(
            path,
            params.iter().map(|(n, a)| (n.clone(), a)),
            &HashMap::new(),
        )
    }

    /// Loads parameters and buffers from a safetensors file by name. `strict`: every one of
    /// the module's names must be in the file and every name of the file in the module.
    /// Arrays are cast to the dtype of the parameter they replace (a bf16 checkpoint loads
    /// into an f32 model); shapes must match.
    fn load_safetensors(&mut self, path: impl AsRef<Path>, strict: bool) -> Result<()> {
        let (tensors, _) = ingot::io::load_safetensors(path)?;
        self.load_arrays(tensors.into_iter().collect(), strict)
    }

    /// [`ModuleExt::load_safetensors`] from arrays already in memory.
    fn load_arrays(&mut self, mut arrays: BTreeMap<String, Array>, strict: bool) -> Result<()> {
        let current = self.parameters();
        if strict {
            let missing: Vec<&String> = current
                .keys()
                .filter(|n| !arrays.contains_key(*n))
                .collect();
            let extra: Vec<&String> = arrays
                .keys()
                .filter(|n| !current.contains_key(*n))
                .collect();
            if !missing.is_empty() || !extra.is_empty() {
                return Err(Error::invalid(
                    "Module::load",
                    format!("missing {missing:?}, unexpected {extra:?}"),
                ));
            }
        } else {
            arrays.retain(|n, _| current.contains_key(n));
        }
        for (n, a) in arrays.iter_mut() {
            let want = current[n].dtype();
            if a.dtype() != want {
                *a = ingot::astype(a, want)?;
            }
        }
        self.update(&arrays)
    }
}

impl<M: Module + ?Sized> ModuleExt for M {}

/// " (did you mean ...?)" for the closest of `names` sharing the last component.
fn suggest(name: &str, names: &BTreeMap<String, Array>) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    let close: Vec<&str> = names
        .keys()
        .filter(|n| n.rsplit('.').next() == Some(last))
        .take(3)
        .map(|s| s.as_str())
        .collect();
    if close.is_empty() {
        String::new()
    } else {
        format!(" (names ending in {last:?}: {})", close.join(", "))
    }
}

/// Dotted names to a nested map tree.
fn nest(flat: &BTreeMap<String, Array>) -> Tree {
    let mut root: BTreeMap<String, Tree> = BTreeMap::new();
    for (name, a) in flat {
        let parts: Vec<&str> = name.split('.').collect();
        insert(&mut root, &parts, a.clone());
    }
    Tree::Map(root)
}

fn insert(map: &mut BTreeMap<String, Tree>, parts: &[&str], a: Array) {
    if parts.len() == 1 {
        map.insert(parts[0].to_string(), Tree::Leaf(a));
        return;
    }
    let entry = map
        .entry(parts[0].to_string())
        .or_insert_with(|| Tree::Map(BTreeMap::new()));
    if let Tree::Map(m) = entry {
        insert(m, &parts[1..], a);
    }
}

/// The value of `loss(model)` and its gradient with respect to each of the model's trainable
/// parameters, by name (the names of [`ModuleExt::trainable_parameters`]). Frozen
/// parameters and buffers are constants. The model is borrowed mutably because layers with
/// state (batch norm's running statistics) update it as they run, as in PyTorch; its
/// parameters are the same arrays afterwards.
pub fn value_and_grad<M, F>(model: &mut M, loss: F) -> Result<(Array, BTreeMap<String, Array>)>
where
    M: Module + ?Sized,
    F: Fn(&M) -> Result<Array>,
{
    let params = model.trainable_parameters();
    let names: Vec<String> = params.keys().cloned().collect();
    let leaves: Vec<Tree> = params.values().cloned().map(Tree::Leaf).collect();
    let cell = std::cell::RefCell::new(&mut *model);
    let keys = names.clone();
    let vg = ingot::value_and_grad_tree(
        |args: &[Tree]| {
            let mut m = cell.borrow_mut();
            let arrays: BTreeMap<String, Array> =
                keys.iter().cloned().zip(args[0].leaves()).collect();
            m.update(&arrays)?;
            loss(&**m)
        },
        &[0],
    );
    let result = vg(&[Tree::List(leaves)]);
    drop(vg);
    // The traced stand-ins leave the model whatever happened.
    model.update(&params)?;
    let (value, grads) = result?;
    let grads = names.into_iter().zip(grads[0].leaves()).collect();
    Ok((value, grads))
}
