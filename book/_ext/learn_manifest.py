"""Render curriculum.yaml (through ``learn.manifest``) into the book.

Usage in a MyST page (the manifest is the single source of truth: never retype a title,
a schedule or a point value in a chapter; write the directive instead)::

    ```{learn-phase} phase1
    ```

        The phase at a glance: duration and span, prerequisites (linked), objectives,
        schedule table, deliverables and projects. Option ``:sections:`` picks and orders a
        subset of ``summary, objectives, schedule, deliverables, projects``, e.g.
        ``:sections: objectives, schedule``.

    ```{learn-checkpoints} phase0
    ```

        An admonition "What learn check phase0 grades": id, title (linked to the chapter
        that teaches it), points, the total and the command to run. Each row carries the
        HTML id ``checkpoint-0-1`` (``learn.book.checkpoint_anchor``) and the Sphinx label
        ``checkpoint-0.1``, so ``{ref}`checkpoint-0.1``` works and ``learn hint`` can link to
        ``<phase book page>.html#checkpoint-0-1``. Use it once per phase, on the page the
        phase's ``book`` entry names. A phase without checkpoints gets a short note instead.

    ```{learn-phases}
    ```

        One table of all phases (number, linked title, duration, span, checkpoints).

Phases are named by id (``phase1``) or number (``1``). Unknown ids, and links to book pages
that do not exist, are reported as Sphinx warnings (so a strict build fails).

The extension also keeps the book offline: it installs MathJax into ``_static/mathjax`` when
missing (``learn.book.ensure_mathjax``), keeps MathJax's on-demand components out of every
page's scripts, and drops sphinx-thebe's idle CDN loader while live code is off.
"""

from __future__ import annotations

import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode

try:
    import learn  # noqa: F401 - the workbook package (editable install)
except ImportError:  # building from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from learn.book import BookBuildError, checkpoint_anchor, ensure_mathjax
from learn.manifest import MANIFEST_PATH, ManifestError, load_manifest

logger = logging.getLogger(__name__)

#: Folders under _static/ whose files are assets loaded on demand, not page scripts.
VENDORED_STATIC = ("mathjax/", ".mathjax.partial/")
PHASE_SECTIONS = ("summary", "objectives", "schedule", "deliverables", "projects")


# --------------------------------------------------------------------------- nodes


class learn_docref(nodes.Inline, nodes.Element):
    """A link to a book document (``reftarget``, optionally ``#anchor``), resolved late."""


class LearnDocRefResolver(SphinxPostTransform):
    default_priority = 5  # before Sphinx's own reference resolver

    def run(self, **kwargs) -> None:
        for node in list(self.document.findall(learn_docref)):
            target = node["reftarget"]
            doc, _, anchor = target.partition("#")
            doc = doc.strip("/")
            content = node.children[:] or [nodes.Text(target)]
            if doc not in self.env.all_docs:
                logger.warning(
                    "learn-manifest: link to book page %r, which is not in the book",
                    doc,
                    location=node,
                    type="learn",
                    subtype="docref",
                )
                node.replace_self(nodes.inline("", "", *content))
                continue
            ref = make_refnode(self.app.builder, self.env.docname, doc, anchor or None, content)
            node.replace_self(ref)


def _docref(target: str, *children: nodes.Node) -> learn_docref:
    node = learn_docref("", *children, reftarget=target)
    return node


# --------------------------------------------------------------------------- helpers


def _para(*children: nodes.Node | str) -> nodes.paragraph:
    para = nodes.paragraph()
    for child in children:
        para += nodes.Text(child) if isinstance(child, str) else child
    return para


def _bullets(items) -> nodes.bullet_list:
    blist = nodes.bullet_list()
    for item in items:
        li = nodes.list_item()
        li += item if isinstance(item, nodes.Node) else _para(item)
        blist += li
    return blist


def _table(headers, rows, widths, classes=(), row_ids=None) -> nodes.table:
    """A docutils table; each cell is a node, a list of inline nodes, or a string."""
    table = nodes.table(classes=["learn-table", *classes])
    tgroup = nodes.tgroup(cols=len(headers))
    table += tgroup
    for width in widths:
        tgroup += nodes.colspec(colwidth=width)
    thead = nodes.thead()
    tgroup += thead
    head = nodes.row()
    for header in headers:
        entry = nodes.entry()
        entry += _para(header)
        head += entry
    thead += head
    tbody = nodes.tbody()
    tgroup += tbody
    for index, cells in enumerate(rows):
        row = nodes.row()
        if row_ids:
            row["ids"].append(row_ids[index])
        for cell in cells:
            entry = nodes.entry()
            if isinstance(cell, nodes.Body):
                entry += cell
            elif isinstance(cell, list | tuple):
                entry += _para(*cell)
            else:
                entry += _para(str(cell))
            row += entry
        tbody += row
    return table


def _phase_link(phase) -> learn_docref:
    return _docref(phase.book, nodes.Text(f"Phase {phase.number}: {phase.title}"))


def _cmd(text: str) -> nodes.literal:
    return nodes.literal(text, text)


class _ManifestDirective(SphinxDirective):
    def manifest(self):
        self.env.note_dependency(str(MANIFEST_PATH))
        return load_manifest()

    def phase_or_error(self, phase_id: str):
        try:
            return self.manifest().phase(phase_id), None
        except (KeyError, ManifestError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            return None, [
                self.state.document.reporter.warning(f"{self.name}: {message}", line=self.lineno)
            ]


# --------------------------------------------------------------------------- directives


class LearnPhase(_ManifestDirective):
    """``learn-phase <phase>``: a phase at a glance, from the manifest."""

    required_arguments = 1
    has_content = False
    option_spec = {"sections": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        phase, error = self.phase_or_error(self.arguments[0])
        if error:
            return error
        manifest = self.manifest()
        wanted = [
            s.strip()
            for s in self.options.get("sections", ",".join(PHASE_SECTIONS)).split(",")
            if s.strip()
        ]
        unknown = [s for s in wanted if s not in PHASE_SECTIONS]
        if unknown:
            return [
                self.state.document.reporter.warning(
                    f"learn-phase: unknown section(s) {', '.join(unknown)}; "
                    f"choose from {', '.join(PHASE_SECTIONS)}",
                    line=self.lineno,
                )
            ]

        container = nodes.container(classes=["learn-phase"])
        for section in wanted:
            container += getattr(self, f"_{section}")(phase, manifest)
        return [container]

    def _summary(self, phase, manifest) -> list[nodes.Node]:
        fields = nodes.field_list(classes=["learn-phase-summary"])

        def field(name: str, *body: nodes.Node | str) -> None:
            item = nodes.field()
            item += nodes.field_name(name, name)
            fbody = nodes.field_body()
            fbody += _para(*body)
            item += fbody
            fields.append(item)

        field("Duration", f"{phase.duration} ({phase.span})")
        if phase.prerequisites:
            parts: list[nodes.Node | str] = []
            for i, pre in enumerate(phase.prerequisites):
                if i:
                    parts.append(", ")
                parts.append(_phase_link(manifest.phase(pre)))
            field("Prerequisites", *parts)
        else:
            field("Prerequisites", "none")
        if phase.checkpoints:
            field(
                "Graded by",
                _cmd(f"learn check {phase.id}"),
                f": {len(phase.checkpoints)} checkpoints, {phase.points} points",
            )
        return [fields]

    def _objectives(self, phase, manifest) -> list[nodes.Node]:
        if not phase.objectives:
            return []
        return [nodes.rubric(text="Objectives"), _bullets(phase.objectives)]

    def _schedule(self, phase, manifest) -> list[nodes.Node]:
        if not phase.schedule:
            return []
        rows = [[item.when, item.what] for item in phase.schedule]
        return [
            nodes.rubric(text="Schedule"),
            _table(["When", "What"], rows, [20, 80], classes=["learn-schedule"]),
        ]

    def _deliverables(self, phase, manifest) -> list[nodes.Node]:
        if not phase.deliverables:
            return []
        return [nodes.rubric(text="Deliverables"), _bullets(phase.deliverables)]

    def _projects(self, phase, manifest) -> list[nodes.Node]:
        if not phase.projects:
            return []
        items = []
        for pid in phase.projects:
            project = manifest.project(pid)
            items.append(
                _para(
                    nodes.strong(text=project.title),
                    " (",
                    _cmd(project.id),
                    ", in ",
                    _cmd(project.path + "/"),
                    ")",
                )
            )
        return [nodes.rubric(text="Projects"), _bullets(items)]


class LearnCheckpoints(_ManifestDirective):
    """``learn-checkpoints <phase>``: what ``learn check <phase>`` grades."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        phase, error = self.phase_or_error(self.arguments[0])
        if error:
            return error
        command = f"learn check {phase.id}"
        box = nodes.admonition(classes=["learn-checkpoints", "tip"])
        box += nodes.title("", "", nodes.Text("What "), _cmd(command), nodes.Text(" grades"))
        if not phase.checkpoints:
            box += _para(
                f"Phase {phase.number} has no graded checkpoints yet: checkpoints arrive with "
                "this phase's projects, and this box lists them once they do. Until then ",
                _cmd(command),
                " has nothing to grade.",
            )
            return [box]

        std = self.env.get_domain("std")
        rows, ids = [], []
        for cp in phase.checkpoints:
            anchor = checkpoint_anchor(cp.id)
            label = f"checkpoint-{cp.id}"
            existing = std.labels.get(label)
            if existing and existing[0] != self.env.docname:
                logger.warning(
                    "learn-checkpoints: checkpoint %s is already listed in %s; "
                    "list a phase's checkpoints on one page only",
                    cp.id,
                    existing[0],
                    location=(self.env.docname, self.lineno),
                )
            else:
                std.labels[label] = (self.env.docname, anchor, f"Checkpoint {cp.id}: {cp.title}")
                std.anonlabels[label] = (self.env.docname, anchor)
                ids.append(anchor)
            rows.append(
                [
                    _para(nodes.strong(text=cp.id)),
                    [_docref(cp.book, nodes.Text(cp.title))],
                    ", ".join(cp.requires) or "-",
                    str(cp.points),
                ]
            )
        if len(ids) != len(rows):
            ids = None
        box += _para(
            _cmd(command),
            " runs these checkpoints against your workspace and records the score; ",
            _cmd("learn hint ID"),
            " prints the hint for one and the chapter to read.",
        )
        box += _table(
            ["ID", "Checkpoint (links to the chapter)", "Needs first", "Points"],
            rows,
            [10, 65, 13, 12],
            classes=["learn-checkpoint-table"],
            row_ids=ids,
        )
        box += _para(
            nodes.strong(text=f"Total: {phase.points} points"),
            f" over {len(phase.checkpoints)} checkpoints. Run:",
        )
        box += nodes.literal_block(command, command, language="console")
        return [box]


class LearnPhases(_ManifestDirective):
    """``learn-phases``: every phase in one table."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        manifest = self.manifest()
        rows = []
        for phase in manifest.phases:
            graded = (
                f"{len(phase.checkpoints)} ({phase.points} points)"
                if phase.checkpoints
                else "with its projects"
            )
            rows.append(
                [
                    str(phase.number),
                    [_docref(phase.book, nodes.Text(phase.title))],
                    phase.duration,
                    phase.span,
                    graded,
                ]
            )
        return [
            _table(
                ["Phase", "Title", "Duration", "When", "Checkpoints"],
                rows,
                [8, 42, 14, 16, 20],
                classes=["learn-phases"],
            )
        ]


def _drop_vendored_scripts(app, config) -> None:
    """Jupyter Book adds every ``*.js`` under ``_static/`` to every page; MathJax's
    components in ``_static/mathjax/`` are loaded on demand by MathJax itself (only
    ``mathjax_path`` belongs in the page), so take them back out."""

    def vendored(entry) -> bool:
        name = entry[0] if isinstance(entry, tuple | list) else entry
        return str(name).startswith(VENDORED_STATIC)

    config.html_js_files = [e for e in config.html_js_files if not vendored(e)]
    config.html_css_files = [e for e in config.html_css_files if not vendored(e)]


def _drop_idle_thebe(app, pagename, templatename, context, doctree) -> None:
    """sphinx-thebe (loaded by Jupyter Book) injects its loader, and its ``THEBE_JS_URL``
    constant pointing at a CDN, into every page even with live code off; the constant is even
    declared twice, a JavaScript error on every page. With thebe off, drop both."""
    options = app.config.html_theme_options or {}
    if (options.get("launch_buttons") or {}).get("thebe"):
        return

    def is_thebe(js) -> bool:
        name = str(getattr(js, "filename", "") or "")
        body = str((getattr(js, "attributes", None) or {}).get("body", ""))
        return name.endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body

    if "script_files" in context:
        context["script_files"] = [js for js in context["script_files"] if not is_thebe(js)]


def _install_mathjax(app) -> None:
    """Make ``mathjax_path`` exist in ``_static/mathjax`` even for a plain
    ``jupyter-book build book`` (``learn book`` has already done it)."""
    if app.builder.format != "html":
        return
    try:
        ensure_mathjax(Path(app.srcdir) / "_static", progress=False)
    except BookBuildError as exc:
        logger.warning(
            "learn-manifest: MathJax is not installed, math will not render: %s",
            exc,
            type="learn",
            subtype="mathjax",
        )


def setup(app):
    app.connect("config-inited", _drop_vendored_scripts)
    app.connect("builder-inited", _install_mathjax)
    app.connect("html-page-context", _drop_idle_thebe)
    app.add_node(learn_docref)
    app.add_post_transform(LearnDocRefResolver)
    app.add_directive("learn-phase", LearnPhase)
    app.add_directive("learn-checkpoints", LearnCheckpoints)
    app.add_directive("learn-phases", LearnPhases)
    return {
        "version": "1.0",
        "parallel_read_safe": True,
        "parallel_write_safe": True,
        "env_version": 1,
    }
