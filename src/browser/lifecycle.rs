//! Page lifecycle → membership hints for one joined space (Window scopes only: a worker has no
//! `document`, so there is nothing to watch).
//!
//! - `visibilitychange`: `Command::SetDozing(document.hidden)`. A hidden tab's timers are
//!   throttled (Chrome aligns them to 1 s, and to once a minute after 5 min: the HTML timers
//!   spec allows it, see docs/design.md's membership section); the hint makes members wait
//!   `dozing_suspect_to_down_after` before declaring it down.
//! - `freeze` (Page Lifecycle API, WICG): nothing is sent. A frozen tab runs no timers and
//!   answers no probe, and whatever it sends from the handler may never leave; peers declare it
//!   down by the normal SWIM rule, exactly like a crashed tab. We do not send the dozing hint
//!   here on purpose: it would stretch the others' suspicion of a tab that may never come back.
//! - `resume` (after a freeze) and `pageshow` with `persisted` true (back from the
//!   back/forward cache, HTML spec "page lifecycle"): `Command::Resume` — membership comes back
//!   at once as a renewed identity announced to every member it knew (peers may have declared
//!   the tab down meanwhile) — then the current visibility as the dozing hint.
//!
//! The `pagehide` leave is not here (it belongs to the tab's lifecycle in `js::profile`).

use std::rc::Weak;

use js_sys::{Function, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::EventTarget;

use crate::browser::peer::BrowserSpace;

/// An event listener: its target (`document` or the window), the event name and the closure
/// registered for it.
type Listener = (EventTarget, &'static str, Closure<dyn Fn(web_sys::Event)>);

/// The listeners one space added to `document` and the window; removed on drop (when the
/// space stops).
pub struct Lifecycle {
    document: EventTarget,
    listeners: Vec<Listener>,
}

impl Lifecycle {
    /// Watches the page for `space` (weak: the listeners do not keep a left space alive).
    /// `None` outside a Window scope.
    pub fn watch(space: Weak<BrowserSpace>) -> Option<Self> {
        let document = Reflect::get(&js_sys::global(), &"document".into()).ok()?;
        let document: EventTarget = document.dyn_into().ok()?;
        let mut me = Self {
            document,
            listeners: Vec::new(),
        };
        let doc = me.document.clone();
        let s = space.clone();
        let hint = move || {
            if let Some(space) = s.upgrade() {
                space.set_dozing(is_hidden(&doc));
            }
        };
        let hint = std::rc::Rc::new(hint);
        let h = hint.clone();
        let doc = me.document.clone();
        me.add(doc.clone(), "visibilitychange", Closure::new(move |_| h()));
        let h = hint.clone();
        let resume = std::rc::Rc::new(move || {
            if let Some(space) = space.upgrade() {
                space.resume();
            }
            h();
        });
        let r = resume.clone();
        me.add(doc, "resume", Closure::new(move |_| r()));
        if let Ok(window) = js_sys::global().dyn_into::<EventTarget>() {
            let on_pageshow = move |e: web_sys::Event| {
                if Reflect::get(&e, &"persisted".into())
                    .ok()
                    .and_then(|v| v.as_bool())
                    == Some(true)
                {
                    resume();
                }
            };
            me.add(window, "pageshow", Closure::new(on_pageshow));
        }
        // A tab that joins while hidden (opened in the background) dozes from the start.
        if is_hidden(&me.document) {
            hint();
        }
        Some(me)
    }

    fn add(&mut self, target: EventTarget, name: &'static str, f: Closure<dyn Fn(web_sys::Event)>) {
        let func: &Function = f.as_ref().unchecked_ref();
        // addEventListener only throws for a non-callable listener, which a Closure is not.
        let _ = target.add_event_listener_with_callback(name, func);
        self.listeners.push((target, name, f));
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        for (target, name, f) in &self.listeners {
            let _ = target.remove_event_listener_with_callback(name, f.as_ref().unchecked_ref());
        }
    }
}

/// `document.hidden` (HTML "page visibility"); `false` if it cannot be read.
fn is_hidden(document: &EventTarget) -> bool {
    Reflect::get(document, &"hidden".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}
