"""Sign in and out, the profile (display name, password, API tokens), user admin."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, logout_user

from kb import devices
from kb.auth import database, keep_session, public, role_required, safe_next, sign_in
from kb.db import ROLES, as_id
from kb.throttle import current_blocks, unlock, unlock_address
from kb.users import (
    UserError,
    authenticate,
    bump_sessions,
    create_token,
    create_user,
    get_user,
    list_tokens,
    list_users,
    new_password,
    reset_password,
    revoke_all_tokens,
    revoke_token,
    update_user,
)

bp = Blueprint("auth", __name__)


def _authenticate(username: str, password: str):
    return authenticate(database(), username, password, request.remote_addr or "",
                        current_app.config["ONE_TIME_PASSWORD_HOURS"],
                        device=devices.device_for(request, username))


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    error = None
    if request.method == "POST":
        try:
            user = _authenticate(request.form.get("username", ""),
                                 request.form.get("password", ""))
        except UserError as exc:
            error = str(exc)
        else:
            sign_in(user)
            if user.must_change_password:
                flash("Choose your own password now: the one you used was temporary.")
                target = url_for("auth.profile")
            else:
                target = safe_next(request.args.get("next"))
            # this browser signed in correctly: its next sign-ins have their own allowance
            return devices.issue(redirect(target), request, user.username)
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
@role_required("agent")
def logout():
    if not getattr(current_user, "is_service", False):
        bump_sessions(database(), current_user.id)  # a copied cookie dies with this one
    logout_user()
    return redirect(url_for("auth.login"))


# what a session signed in with a one-time password may still do on this page
_ONE_TIME_ACTIONS = {"password", "everywhere"}


@bp.route("/profile", methods=["GET", "POST"])
@role_required("agent")
def profile():
    new_token = None
    if request.method == "POST":
        action = request.form.get("action")
        if current_user.must_change_password and action not in _ONE_TIME_ACTIONS:
            abort(403, description="Change your one-time password first; nothing else can be "
                                   "done until then.")
        try:
            if action == "profile":
                update_user(database(), current_user.username,
                            display_name=request.form.get("display_name", "").strip()
                            or current_user.username,
                            email=request.form.get("email", "").strip())
                flash("Profile saved. Your emails now sign off with this name.")
            elif action == "password":
                _authenticate(current_user.username, request.form.get("current", ""))
                if request.form.get("new") != request.form.get("confirm"):
                    raise UserError("The two new passwords differ; type them again.")
                user = update_user(database(), current_user.username,
                                   password=request.form.get("new", ""),
                                   must_change_password=False)
                keep_session(user.session_generation)  # every other session is signed out
                revoked = (revoke_all_tokens(database(), user.id)
                           if request.form.get("revoke_tokens") == "on" else 0)
                flash("Password changed. Any other place you were signed in is signed out."
                      + (f" Your {revoked} API token{'s were' if revoked != 1 else ' was'} "
                         "revoked: make a new one for each tool that needs it."
                         if revoked else ""))
            elif action == "everywhere":
                bump_sessions(database(), current_user.id)
                logout_user()
                flash("Signed out everywhere, this browser included. Your API tokens still "
                      "work; revoke them below the next time you sign in if needed.")
                return redirect(url_for("auth.login"))
            elif action == "token":
                new_token = create_token(database(), current_user.username,
                                         request.form.get("label", ""))
            elif action == "revoke":
                token_id = as_id(request.form.get("token_id")) or 0
                if not revoke_token(database(), current_user.id, token_id):
                    abort(404, description="You have no token with that number; it may "
                                           "already be revoked. Reload your profile page.")
                flash("Token revoked.")
        except UserError as exc:
            flash(str(exc), "error")
        if new_token is None:
            return redirect(url_for("auth.profile"))
    return render_template("profile.html", tokens=list_tokens(database(), current_user.id),
                           new_token=new_token)


@bp.route("/admin/users", methods=["GET", "POST"])
@role_required("admin")
def users():
    # A one-time password is shown on this response only: a flash message would
    # carry it in the session cookie, which anyone holding the cookie can read.
    shown = None
    if request.method == "POST":
        action = request.form.get("action")
        name = request.form.get("username", "")
        try:
            if action == "create":
                service = request.form.get("service") == "on"
                password = None if service else new_password()
                user = create_user(database(), name, password,
                                   role=request.form.get("role", "agent"),
                                   display_name=request.form.get("display_name", ""),
                                   email=request.form.get("email", ""), must_change=True,
                                   service=service)
                if service:
                    flash(f"Created the service account {user.username}. Make its token with "
                          f"`kb token create {user.username}`.")
                else:
                    shown = (user.username, password, "created")
            elif action == "role":
                update_user(database(), name, role=request.form.get("role", "agent"))
                flash(f"{name} is now {request.form.get('role')}.")
            elif action == "email":
                user = update_user(database(), name, email=request.form.get("email", ""))
                flash(f"Notifications for {user.username} go to {user.email}." if user.email
                      else f"{user.username} has no email address now: notifications stay "
                           "in the app.")
            elif action == "disable":
                update_user(database(), name, active=False)
                flash(f"{name} can no longer sign in; their sessions and API tokens are ended.")
            elif action == "enable":
                update_user(database(), name, active=True)
                flash(f"{name} can sign in again.")
            elif action == "reset":
                shown = (get_user(database(), name).username,
                         reset_password(database(), name), "reset")
            elif action == "unlock":
                unlock(database(), name)
                flash(f"Failed sign-ins of {name} forgotten: they can try again at once.")
            elif action == "unlock-address":
                unlock_address(database(), request.form.get("address", ""))
                flash(f"Failed sign-ins from {request.form.get('address', '')} forgotten.")
        except UserError as exc:
            flash(str(exc), "error")
        if shown is None:
            return redirect(url_for("auth.users"))
    return render_template("users.html", users=list_users(database()), roles=ROLES,
                           blocks=current_blocks(database()), shown=shown,
                           one_time_hours=current_app.config["ONE_TIME_PASSWORD_HOURS"])
