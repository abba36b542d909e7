"""Proposals: new entries and edits suggested by anyone, reviewed by trainers.

Approving writes one commit whose author is the proposer (whose words these
are), whose committer is the trainer, and whose message is the reason given.
A proposal remembers the version it was based on; if the entry changed since,
approval refuses until the trainer has seen both changes.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from kb.db import Database, Proposal, User, as_id, too_long, utcnow
from kb.entry import EntryError, parse_entry, update_text, with_review_defaults
from kb.errors import KbError
from kb.sheet import Sheet
from kb.store import ConflictError, entry_path
from kb.users import person_of

MAX_PENDING = 20  # proposals one person may have waiting for review at once
PENDING, APPROVED, REJECTED, CHANGES = "pending", "approved", "rejected", "changes_requested"
LABELS = {PENDING: "waiting for review", APPROVED: "approved", REJECTED: "rejected",
          CHANGES: "changes requested", "withdrawn": "withdrawn"}


# load who proposed and who reviewed with the proposal, for use after the session
_PEOPLE = (selectinload(Proposal.author), selectinload(Proposal.reviewer))


class ProposalError(KbError, ValueError):
    """A proposal that cannot be made or reviewed as asked; says what to do."""


class NoSuchProposal(ProposalError):
    """The id names no proposal."""


class StaleProposal(ProposalError):
    def __init__(self, proposal: Proposal, current_version: str | None):
        self.proposal = proposal
        self.current_version = current_version
        super().__init__("The entry changed after this proposal was made. Compare both "
                         "changes, then approve on top of the current version or send it back.")


def check_text(slug: str, text: str) -> None:
    try:
        parse_entry(slug, text)
    except EntryError as exc:
        raise ProposalError(f"The proposed entry cannot be saved: {exc}.") from None


def create(db: Database, sheet: Sheet, author: User, slug: str, text: str, reason: str,
           base_version: str | None, is_new: bool) -> Proposal:
    if not reason.strip():
        raise ProposalError("Say why in a few words: the reason goes into the history.")
    problem = too_long(Proposal, {"slug": slug, "base_version": base_version})
    if problem:
        raise ProposalError(f"That is not a version of this entry ({problem}); send the "
                            "version your edit started from, as the entry gives it.")
    check_text(slug, text)
    _check_pending(db, author)
    current = sheet.store.version_of(entry_path(slug))
    if is_new and current is not None:
        raise ProposalError(f"There is already an entry called '{slug}'. Suggest an edit to it, "
                            "or pick another title.")
    if not is_new and current is None:
        raise ProposalError(f"There is no entry '{slug}' to edit.")
    with db.session() as s:
        proposal = Proposal(slug=slug, is_new=is_new, base_version=base_version, text=text,
                            reason=reason.strip(), author_id=author.id)
        s.add(proposal)
        s.commit()
        return get(db, proposal.id)


def _check_pending(db: Database, author: User) -> None:
    with db.session() as s:
        waiting = s.scalar(select(func.count(Proposal.id)).where(
            Proposal.author_id == author.id, Proposal.status == PENDING)) or 0
    if waiting >= MAX_PENDING:
        raise ProposalError(f"You have {waiting} proposals waiting for review, the most one "
                            "person can have. Wait for a trainer to review some of them.")


def get(db: Database, proposal_id: int) -> Proposal:
    if as_id(proposal_id) is None:
        raise NoSuchProposal(f"There is no proposal #{proposal_id}.")
    with db.session() as s:
        proposal = s.get(Proposal, proposal_id, options=_PEOPLE)
        if proposal is None:
            raise NoSuchProposal(f"There is no proposal #{proposal_id}.")
        return proposal


def queue(db: Database) -> list[Proposal]:
    return _list(db, Proposal.status == PENDING)


def by_author(db: Database, user_id: int) -> list[Proposal]:
    return _list(db, Proposal.author_id == user_id)


def _list(db: Database, where) -> list[Proposal]:
    with db.session() as s:
        query = select(Proposal).where(where).options(*_PEOPLE).order_by(Proposal.id.desc())
        return list(s.scalars(query))


def title_of(proposal: Proposal) -> str:
    """The entry's title as proposed (the slug if the text cannot be read)."""
    try:
        return parse_entry(proposal.slug, proposal.text).title
    except EntryError:
        return proposal.slug


def pending_count(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Proposal.id)).where(Proposal.status == PENDING)) or 0


def is_stale(sheet: Sheet, proposal: Proposal) -> bool:
    return sheet.store.version_of(entry_path(proposal.slug)) != proposal.base_version


def approve(db: Database, sheet: Sheet, proposal_id: int, reviewer: User,
            text: str | None = None, over_version: str | None = None,
            comment: str = "") -> str | None:
    """Apply the proposal (optionally as edited by the reviewer) as one commit.
    `comment` is the reviewer's note to the proposer.

    `over_version` is the current version the reviewer has seen the diff against;
    without it a stale proposal raises StaleProposal and nothing is written."""
    proposal = get(db, proposal_id)
    if proposal.status != PENDING:
        raise ProposalError(f"Proposal #{proposal.id} is {LABELS[proposal.status]}, not waiting.")
    text = text if text is not None else proposal.text
    check_text(proposal.slug, text)
    if proposal.is_new:  # a new entry is owned and dated, so it falls due for review
        entry = parse_entry(proposal.slug, text)
        text = update_text(text, entry, with_review_defaults(entry, reviewer.username))
    current = sheet.store.version_of(entry_path(proposal.slug))
    expected = proposal.base_version
    if current != proposal.base_version:
        if over_version is None or over_version != current:
            raise StaleProposal(proposal, current)
        expected = over_version
    try:
        commit = sheet.write(
            {entry_path(proposal.slug): text}, message=proposal.reason,
            author=person_of(proposal.author), committer=person_of(reviewer),
            expected={entry_path(proposal.slug): expected},
        )
    except ConflictError as exc:  # changed between our check and the write
        raise StaleProposal(proposal, exc.current) from None
    _close(db, proposal.id, APPROVED, reviewer, comment, commit, text)
    return commit


def reject(db: Database, proposal_id: int, reviewer: User, comment: str) -> None:
    if not comment.strip():
        raise ProposalError("Say why it is rejected, so the proposer learns from it.")
    _close(db, proposal_id, REJECTED, reviewer, comment)


def send_back(db: Database, proposal_id: int, reviewer: User, comment: str) -> None:
    if not comment.strip():
        raise ProposalError("Say what should change before it can be approved.")
    _close(db, proposal_id, CHANGES, reviewer, comment)


def resubmit(db: Database, sheet: Sheet, proposal_id: int, author: User, text: str,
             reason: str) -> None:
    proposal = get(db, proposal_id)
    if proposal.author_id != author.id:
        raise ProposalError("Only the person who made a proposal can resubmit it.")
    if proposal.status != CHANGES:
        raise ProposalError("Only a proposal sent back for changes can be resubmitted.")
    check_text(proposal.slug, text)
    _check_pending(db, author)
    with db.session() as s:
        row = s.get(Proposal, proposal_id)
        row.text, row.reason, row.status, row.updated_at = text, reason.strip() or row.reason, \
            PENDING, utcnow()
        s.commit()


def _close(db: Database, proposal_id: int, status: str, reviewer: User, comment: str,
           commit: str | None = None, text: str | None = None) -> None:
    with db.session() as s:
        row = s.get(Proposal, proposal_id)
        if row is None:
            raise ProposalError(f"There is no proposal #{proposal_id}.")
        if row.status != PENDING:
            raise ProposalError(f"Proposal #{proposal_id} is {LABELS[row.status]}, not waiting.")
        row.status, row.reviewer_id, row.review_comment = status, reviewer.id, comment.strip()
        row.commit, row.updated_at = commit, utcnow()
        if text is not None:
            row.text = text
        s.commit()
