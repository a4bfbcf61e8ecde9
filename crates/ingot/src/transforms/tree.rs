//! Parameter trees: an argument to a transform may be one array, a list, or a named map,
//! nested as deep as a model's parameters are.

use crate::{Array, Error, Result};
use std::collections::BTreeMap;

/// An array, a list of trees, or a map from names to trees.
#[derive(Clone)]
pub enum Tree {
    Leaf(Array),
    List(Vec<Tree>),
    Map(BTreeMap<String, Tree>),
}

impl Tree {
    /// The arrays in a fixed order: lists in order, maps by sorted name.
    pub fn leaves(&self) -> Vec<Array> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }
    fn collect(&self, out: &mut Vec<Array>) {
        match self {
            Tree::Leaf(a) => out.push(a.clone()),
            Tree::List(v) => v.iter().for_each(|t| t.collect(out)),
            Tree::Map(m) => m.values().for_each(|t| t.collect(out)),
        }
    }
    /// A tree of the same structure holding `leaves` (in [`Tree::leaves`] order).
    pub fn with_leaves(&self, leaves: &[Array]) -> Result<Tree> {
        let mut it = leaves.iter();
        let t = self.rebuild(&mut it)?;
        if it.next().is_some() {
            return Err(Error::invalid("tree", "more leaves than the tree has"));
        }
        Ok(t)
    }
    fn rebuild<'a>(&self, it: &mut impl Iterator<Item = &'a Array>) -> Result<Tree> {
        Ok(match self {
            Tree::Leaf(_) => Tree::Leaf(
                it.next()
                    .ok_or_else(|| Error::invalid("tree", "fewer leaves than the tree has"))?
                    .clone(),
            ),
            Tree::List(v) => Tree::List(v.iter().map(|t| t.rebuild(it)).collect::<Result<_>>()?),
            Tree::Map(m) => Tree::Map(
                m.iter()
                    .map(|(k, t)| Ok((k.clone(), t.rebuild(it)?)))
                    .collect::<Result<_>>()?,
            ),
        })
    }
    /// The array of a leaf.
    pub fn array(&self) -> Result<&Array> {
        match self {
            Tree::Leaf(a) => Ok(a),
            _ => Err(Error::invalid(
                "tree",
                "expected an array, found a list or map",
            )),
        }
    }
    /// The subtree under `name` of a map.
    pub fn get(&self, name: &str) -> Result<&Tree> {
        match self {
            Tree::Map(m) => m
                .get(name)
                .ok_or_else(|| Error::invalid("tree", format!("no entry named {name:?}"))),
            _ => Err(Error::invalid(
                "tree",
                format!("looked up {name:?} in a non-map"),
            )),
        }
    }
    /// The `i`-th subtree of a list.
    pub fn at(&self, i: usize) -> Result<&Tree> {
        match self {
            Tree::List(v) => v.get(i).ok_or_else(|| {
                Error::invalid(
                    "tree",
                    format!("index {i} out of range for {} items", v.len()),
                )
            }),
            _ => Err(Error::invalid(
                "tree",
                format!("indexed a non-list with {i}"),
            )),
        }
    }
    /// Applies `f` to every leaf, keeping the structure.
    pub fn map(&self, f: &mut impl FnMut(&Array) -> Result<Array>) -> Result<Tree> {
        Ok(match self {
            Tree::Leaf(a) => Tree::Leaf(f(a)?),
            Tree::List(v) => Tree::List(v.iter().map(|t| t.map(f)).collect::<Result<_>>()?),
            Tree::Map(m) => Tree::Map(
                m.iter()
                    .map(|(k, t)| Ok((k.clone(), t.map(f)?)))
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

impl From<Array> for Tree {
    fn from(a: Array) -> Tree {
        Tree::Leaf(a)
    }
}
impl From<&Array> for Tree {
    fn from(a: &Array) -> Tree {
        Tree::Leaf(a.clone())
    }
}
impl From<Vec<Array>> for Tree {
    fn from(v: Vec<Array>) -> Tree {
        Tree::List(v.into_iter().map(Tree::Leaf).collect())
    }
}
impl From<Vec<Tree>> for Tree {
    fn from(v: Vec<Tree>) -> Tree {
        Tree::List(v)
    }
}
impl From<BTreeMap<String, Array>> for Tree {
    fn from(m: BTreeMap<String, Array>) -> Tree {
        Tree::Map(m.into_iter().map(|(k, a)| (k, Tree::Leaf(a))).collect())
    }
}
impl From<BTreeMap<String, Tree>> for Tree {
    fn from(m: BTreeMap<String, Tree>) -> Tree {
        Tree::Map(m)
    }
}
