"""Sharing worksheets with users and groups (issue 20): roles, the API's entries, the
"shared with me" listing and whom the share dialog may show.

A worksheet's ``collaborators`` and ``viewers`` hold principals (``userid:<id>``,
``group:<id>``); the ACL is computed from them and from the requester's principals at
every request, so a change (or a user leaving a group) counts from the next request.
In the API an entry is ``"<login>"`` or ``"group:<name>"``.  ``root.shared_with``
(resources/shareindex.py ``index_shares``) maps each principal to the keys of the worksheets
shared with it, kept in the transaction of every change.

Visibility (``sagenb.sharing.visibility``): ``members`` (the default) lets a user see
the groups they belong to, and other users only by their exact login; ``all`` shows
everyone.  Admins see all.  Nothing here names a user or group the caller may not see:
an unknown and an unseen entry get the same 400, and a worksheet's other people are
counted, not named, for those who are not its owner.
"""
from .. import audit, server_settings
from ..acl import admin_principal, group_principal, user_principal
from ..web import api_error
from . import publishing

VISIBILITY = 'sagenb.sharing.visibility'
ROLES = ('collaborators', 'viewers')
GROUP_PREFIX = 'group:'
# Entries one request may name; more is surely a mistake (a class is a group).
MAX_ENTRIES = 500
# Type-ahead answers at most this many users and as many groups.
MAX_CANDIDATES = 20


def sees_everyone(request, user):
    return user.is_admin or server_settings.get(request, VISIBILITY) == 'all'


def role_of(worksheet, user):
    """``owner``, ``collaborator``, ``viewer`` or None: what ``user`` is on it."""
    if user is None:
        return None
    if user.id == worksheet.owner_id:
        return 'owner'
    mine = set(user.principals())
    if mine & set(worksheet.collaborators):
        return 'collaborator'
    if mine & set(worksheet.viewers):
        return 'viewer'
    return None


def entry_of(root, principal):
    """The API's entry for a stored principal, or None for one that is gone."""
    if principal.startswith('userid:'):
        user = root.users_by_id.get(principal[len('userid:'):])
        return user.login if user is not None else None
    if principal.startswith(GROUP_PREFIX):
        group = root.groups.get(principal[len(GROUP_PREFIX):])
        return GROUP_PREFIX + group.name if group is not None else None
    return None


def counts(root, worksheet):
    """``{"people": n, "groups": m}`` the worksheet is shared with (for "shared with 3
    people, 1 group"): numbers only, which everyone who sees the worksheet may know."""
    people = groups = 0
    for principal in worksheet.shared_principals():
        if entry_of(root, principal) is None:
            continue
        if principal.startswith(GROUP_PREFIX):
            groups += 1
        else:
            people += 1
    return {'people': people, 'groups': groups}


def published_json(request, worksheet):
    """How the worksheet is published, as GET sharing shows it (None: not published)."""
    return publishing.publication_state(request, worksheet)


def sharing_json(request, worksheet):
    """What GET sharing answers to the requester.  Its owner, admins, and everyone
    where visibility is ``all`` get every entry; others (collaborators, viewers) the
    entries that are themselves or their groups, and ``others``: how many they may
    not see."""
    root = request.root
    user = request.user
    complete = user.id == worksheet.owner_id or sees_everyone(request, user)
    mine = set(user.principals())
    answer = {'collaborators': [], 'viewers': [], 'others': 0}
    for role in ROLES:
        for principal in getattr(worksheet, role):  # collaborators, viewers
            entry = entry_of(root, principal)
            if entry is None:
                continue
            if complete or principal in mine:
                answer[role].append(entry)
            else:
                answer['others'] += 1
    answer['published'] = published_json(request, worksheet)
    answer.update(counts(root, worksheet))
    return answer


def visible_group(request, user, group):
    return sees_everyone(request, user) or group.id in user.group_ids


def resolve(request, worksheet, entries, field):
    """The principals of the API's ``entries``; unknown ones (and groups the caller may
    not see that are not on the worksheet already) are collected, not named apart."""
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise api_error(400, '"%s" must be a list of "<login>" or "group:<name>"' % field)
    root = request.root
    user = request.user
    present = worksheet.shared_principals()
    found, unknown, ambiguous = [], [], []
    for entry in entries:
        entry = entry.strip()
        if entry.startswith(GROUP_PREFIX):
            name = entry[len(GROUP_PREFIX):].strip()
            groups = [g for g in root.groups.values() if g.name == name and (
                group_principal(g.id) in present or visible_group(request, user, g))]
            if len(groups) > 1:
                ambiguous.append(entry)
                continue
            principal = group_principal(groups[0].id) if groups else None
        else:
            target = root.user_by_login(entry) if entry else None
            principal = user_principal(target.id) if target is not None else None
        if principal is None:
            unknown.append(entry)
        elif principal != user_principal(worksheet.owner_id) and principal not in found:
            # The owner has every right already: naming them changes nothing.
            found.append(principal)
    return found, unknown, ambiguous


def parse_sharing(request, worksheet, body):
    """``(collaborators, viewers)`` as principals from a PUT body, or a 400 naming
    every entry that is no user or group the caller may see."""
    missing = [f for f in ROLES if f not in body]
    if missing:
        raise api_error(400, 'give "collaborators" and "viewers" (lists of "<login>" or '
                             '"group:<name>"; [] for none)')
    if sum(len(body[f]) if isinstance(body[f], list) else 0 for f in ROLES) > MAX_ENTRIES:
        raise api_error(400, 'at most %d entries; share with a group instead' % MAX_ENTRIES)
    collaborators, unknown, ambiguous = resolve(request, worksheet, body['collaborators'],
                                                'collaborators')
    viewers, unknown_v, ambiguous_v = resolve(request, worksheet, body['viewers'], 'viewers')
    unknown += [e for e in unknown_v if e not in unknown]
    ambiguous += [e for e in ambiguous_v if e not in ambiguous]
    if unknown:
        raise api_error(400, 'no such user or group: %s' % ', '.join(
            repr(e) for e in unknown))
    if ambiguous:
        raise api_error(400, 'several groups have the name %s; ask an admin to rename '
                             'one' % ', '.join(repr(e) for e in ambiguous))
    # A user named in both roles is a collaborator.
    viewers = [p for p in viewers if p not in collaborators]
    return collaborators, viewers


def change_sharing(request, worksheet, collaborators, viewers):
    """Set the worksheet's sharing (``P.SHARE`` was checked).  Someone who is not its
    owner (an admin) may only take rights away: nobody may gain through them."""
    user = request.user
    if user.id != worksheet.owner_id:
        before_c = set(worksheet.collaborators)
        may_view = before_c | set(worksheet.viewers)
        if not set(collaborators) <= before_c or not set(viewers) <= may_view:
            raise api_error(403, 'only the owner may share a worksheet with more people '
                                 'or give more rights; an admin may only take them away')
    if list(worksheet.collaborators) == collaborators and list(worksheet.viewers) == viewers:
        return False
    worksheet.share(collaborators, viewers)
    root = request.root
    audit.record(request, 'worksheet_shared', target='%s/%s' % (
        worksheet.owner.login, worksheet.__name__), detail='collaborators: %s; viewers: %s' % (
        ', '.join(filter(None, (entry_of(root, p) for p in collaborators))) or '-',
        ', '.join(filter(None, (entry_of(root, p) for p in viewers))) or '-'))
    return True


def shared_with(request, user):
    """``[(worksheet, role)]`` of the worksheets others share with ``user`` (directly or
    through a group), from the index; each is checked against the worksheet itself, so
    a stale index entry never shows one."""
    root = request.root
    keys = set()
    for principal in user.principals():
        if principal != admin_principal():
            keys.update(root.shared_with.get(principal, ()))
    found = []
    for key in keys:
        worksheet = root.worksheet_by_key(key)
        if worksheet is None:
            continue
        role = role_of(worksheet, user)
        if role in ('collaborator', 'viewer'):
            found.append((worksheet, role))
    return found


def candidates(request, query):
    """Users and groups the requester may see that match ``query``, for the share
    dialog's type-ahead: ``{"users": [{"login", "name"}], "groups": [{"name", "entry"}]}``."""
    root = request.root
    user = request.user
    query = query.strip()
    everyone = sees_everyone(request, user)
    lowered = query.lower()
    users = []
    if everyone and query:
        # Login and full name, not the e-mail address, which stays private.
        for login, other in root.home.items():
            if other.id != user.id and not other.suspended and (
                    lowered in login.lower() or lowered in (other.fullname or '').lower()):
                users.append({'login': other.login, 'name': other.fullname or ''})
            if len(users) >= MAX_CANDIDATES:
                break
    elif query:
        # Only by the exact login: who is on the server is not for everybody to list.
        other = root.user_by_login(query)
        if other is not None and other.id != user.id and not other.suspended:
            users.append({'login': other.login, 'name': ''})
    groups = []
    pool = root.groups.values() if everyone else filter(
        None, (root.groups.get(gid) for gid in user.group_ids))
    for group in pool:
        if lowered in group.name.lower():
            groups.append({'name': group.name, 'entry': GROUP_PREFIX + group.name})
    groups.sort(key=lambda g: g['name'].lower())
    return {'users': users, 'groups': groups[:MAX_CANDIDATES]}
