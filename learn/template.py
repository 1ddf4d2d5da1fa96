"""Stamp out a learner's new repository from the Phase 0 repository template.

The template lives at ``phases/phase0/repo_template`` in a graded root: the workbook repository
(the reference) or a learner workspace (the learner's own, completed template). Stamping copies
it to a fresh folder and fills in two placeholders, in file contents and in path names:

- ``{{ project_name }}``: the distribution name (``pyproject.toml``'s ``[project] name``);
- ``{{ package_name }}``: the import package under ``src/``, by default derived from the
  project name (lowercased, ``-`` and ``.`` replaced with ``_``).

Other ``{{ ... }}`` expressions, such as GitHub Actions' ``${{ matrix.os }}``, are left alone.
A file whose name ends in ``.tmpl`` is written without that suffix: the template uses it for
Python files that are not valid Python before substitution (``from {{ package_name }} import``),
so the workbook's own linters and test collection skip them. Solution and prompt markers (see
docs/authoring.md) are removed, so a repository stamped from the reference is clean.

Finally the new folder becomes a git repository with one initial commit, when git is available.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import sys
from pathlib import Path

from learn.files import GitError, clear_folder, init_repository, iter_files

#: Where the template sits inside a graded root (repository or workspace).
TEMPLATE_RELPATH = Path("phases/phase0/repo_template")

#: Suffix of template files that become valid only once the placeholders are substituted.
TEMPLATE_SUFFIX = ".tmpl"

_PLACEHOLDER = re.compile(r"\{\{\s*(project_name|package_name)\s*\}\}")
# A distribution name as PEP 508 allows it: letters, digits, '.', '_', '-', alphanumeric ends.
_PROJECT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_PACKAGE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TemplateError(ValueError):
    """The template cannot be stamped: a bad name, a missing template or a non-empty destination."""


def template_dir(root: Path) -> Path:
    """The repository template inside a graded root (the repository or a learner workspace)."""
    return Path(root) / TEMPLATE_RELPATH


def default_package_name(project_name: str) -> str:
    """The import package name derived from a project name: ``My-Service`` -> ``my_service``."""
    return re.sub(r"[-.]+", "_", project_name.strip().lower())


def validate_project_name(name: str) -> str:
    """Return `name` if it is a valid distribution name, else raise `TemplateError`."""
    if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name):
        raise TemplateError(
            f"invalid project name {name!r}: use letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit (for example 'credit-api')"
        )
    return name


def validate_package_name(name: str) -> str:
    """Return `name` if it can be imported as a top-level package, else raise `TemplateError`.

    It must be an ASCII Python identifier, not a keyword, and must not shadow a standard-library
    module (a package called ``json`` or ``test`` would break imports in surprising ways).
    """
    if not isinstance(name, str) or not _PACKAGE_NAME.fullmatch(name):
        raise TemplateError(
            f"invalid package name {name!r}: it must be a Python identifier "
            "(ASCII letters, digits and '_', not starting with a digit), e.g. 'credit_api'"
        )
    if keyword.iskeyword(name):
        raise TemplateError(f"invalid package name {name!r}: it is a Python keyword")
    if name in sys.stdlib_module_names:
        raise TemplateError(
            f"invalid package name {name!r}: it would shadow the standard-library module {name!r}"
        )
    return name


def render(text: str, names: dict[str, str]) -> str:
    """Substitute ``{{ project_name }}`` / ``{{ package_name }}`` in `text`; keep anything else."""
    return _PLACEHOLDER.sub(lambda m: names[m.group(1)], text)


def strip_markers(text: str) -> str:
    """Drop solution-region marker lines and whole prompt regions (docs/authoring.md).

    ``# BEGIN SOLUTION ...`` / ``# END SOLUTION`` lines go, the code between them stays; a
    ``# BEGIN PROMPT`` ... ``# END PROMPT`` region goes entirely, as it is the learner-facing
    placeholder for that code. Text without markers is returned unchanged.
    """
    if "BEGIN SOLUTION" not in text and "BEGIN PROMPT" not in text:
        return text
    from learn.regions import ANY_MARKER, BEGIN_PROMPT, END_PROMPT

    out: list[str] = []
    in_prompt = False
    for line in text.splitlines(keepends=True):
        if BEGIN_PROMPT.match(line):
            in_prompt = True
        elif END_PROMPT.match(line):
            in_prompt = False
        elif not in_prompt and not ANY_MARKER.match(line):
            out.append(line)
    return "".join(out)


def stamp_template(
    source: Path,
    dest: Path,
    project_name: str,
    package_name: str | None = None,
    *,
    init_git: bool = True,
) -> Path:
    """Copy the repository template at `source` to `dest`, filling in the names.

    Args:
        source: the template folder, ``<root>/phases/phase0/repo_template`` (see `template_dir`).
        dest: the new repository; it must not exist, or be an empty folder.
        project_name: the distribution name, e.g. ``credit-api``.
        package_name: the import package; by default derived from `project_name`
            (``credit-api`` -> ``credit_api``).
        init_git: run ``git init`` and make an initial commit, if git is installed.

    Returns:
        `dest`, resolved to an absolute path.

    Raises:
        TemplateError: a name is invalid, `source` is not a template, or `dest` is not empty.
    """
    source = Path(source).resolve()
    dest = Path(dest).expanduser().resolve()
    project_name = validate_project_name(project_name)
    if package_name is None:
        package_name = default_package_name(project_name)
    package_name = validate_package_name(package_name)
    names = {"project_name": project_name, "package_name": package_name}

    if not source.is_dir():
        raise TemplateError(f"no repository template at {source}")
    if not any(source.iterdir()):
        raise TemplateError(f"the repository template at {source} is empty")
    if dest.exists() and not dest.is_dir():
        raise TemplateError(f"{dest} exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()):
        raise TemplateError(f"{dest} is not empty: choose a new folder for the repository")
    if dest == source or source in dest.parents:
        raise TemplateError(f"{dest} is inside the template {source}")

    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _copy_tree(source, dest, names)
    except BaseException:
        clear_folder(dest, remove_root=created)
        raise
    if init_git:
        try:
            init_repository(dest, message=f"Initial commit of {project_name} from the template")
        except GitError as exc:
            raise TemplateError(str(exc)) from None
    return dest


def _copy_tree(source: Path, dest: Path, names: dict[str, str]) -> None:
    """Copy `source` into the existing folder `dest`, rendering names and contents."""
    folders: set[Path] = set()
    for rel in iter_files(source):
        src = source / rel
        target_dir = dest / render(str(rel.parent), names)
        target_dir.mkdir(parents=True, exist_ok=True)
        folders.update(rel.parents)
        name = render(rel.name, names)
        if name.endswith(TEMPLATE_SUFFIX) and len(name) > len(TEMPLATE_SUFFIX):
            name = name[: -len(TEMPLATE_SUFFIX)]
        target = target_dir / name
        if target.exists():
            raise TemplateError(f"two template files both stamp to {target.relative_to(dest)}")
        if src.is_symlink():
            os.symlink(os.readlink(src), target)
            continue
        data = src.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            target.write_bytes(data)  # binary: copied as is
        else:
            target.write_bytes(render(strip_markers(text), names).encode("utf-8"))
        shutil.copymode(src, target)
    # Last and deepest first, so a read-only folder is filled before it loses its write bit.
    for rel in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        shutil.copymode(source / rel, dest / render(str(rel), names))
