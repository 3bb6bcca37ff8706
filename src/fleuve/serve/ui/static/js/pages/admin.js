// Admin: users, roles, grants through the engine, and connections to sync.

import { api, FLEUVE, sqlJob, state, UI } from "../api.js";
import { errorBox, h, table, tabs, toast } from "../dom.js";
import { when } from "../format.js";
import { render } from "../router.js";

export async function adminPage(root) {
  if (!state.me?.admin) { root.replaceChildren(errorBox(new Error("the admin pages need the admin role"))); return; }
  const usersPanel = async () => {
    const { data } = await api(`${FLEUVE}/users`);
    const name = h("input", { required: true, autocomplete: "off" });
    const password = h("input", { type: "password", required: true, minlength: 8, autocomplete: "new-password" });
    const roles = h("input", { placeholder: "analyst, data_engineer" });
    const form = h("form", { class: "row", "aria-label": "New user" }, h("label", {}, "User name", name), h("label", {}, "Password", password),
      h("label", {}, "Roles (comma separated)", roles), h("button", { type: "submit" }, "Create user"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api(`${UI}/admin/users`, { method: "POST", body: { userName: name.value, password: password.value, roles: roles.value.split(",").map((r) => r.trim()).filter(Boolean) } });
        toast(`Created ${name.value}`);
        render();
      } catch (error) { toast(error.message); }
    });
    return h("div", { class: "stack" }, table(["user", "roles", "state", "created"], data.map((u) => {
      const input = h("input", { value: u.roles.join(", "), "aria-label": `Roles of ${u.userName}` });
      return [u.userName,
        h("div", { class: "row" }, input, h("button", { type: "button", class: "secondary", onclick: async () => {
          try { await api(`${UI}/admin/users/${encodeURIComponent(u.userName)}`, { method: "PATCH", body: { roles: input.value.split(",").map((r) => r.trim()).filter(Boolean) } }); toast("Roles saved"); } catch (error) { toast(error.message); }
        } }, "Save roles")),
        h("button", { type: "button", class: u.disabled ? "secondary" : "danger", onclick: async () => {
          try { await api(`${UI}/admin/users/${encodeURIComponent(u.userName)}`, { method: "PATCH", body: { disabled: !u.disabled } }); render(); } catch (error) { toast(error.message); }
        } }, u.disabled ? "Enable" : "Disable"),
        when(u.createdAt)];
    })), h("h3", {}, "New user"), form);
  };
  const rolesPanel = async () => {
    const { data } = await api(`${FLEUVE}/users`);
    const roles = {};
    for (const u of data) for (const r of u.roles) (roles[r] ||= []).push(u.userName);
    return table(["role", "members"], Object.entries(roles).sort().map(([r, m]) => [r, m.join(", ")]));
  };
  const grantsPanel = async () => {
    const statement = h("input", { placeholder: "GRANT SELECT ON gold.customer_metrics TO ROLE analyst" });
    const out = h("div");
    const form = h("form", { class: "row", "aria-label": "Grant or revoke" }, h("label", { class: "wide" }, "GRANT or REVOKE statement", statement), h("button", { type: "submit" }, "Run"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!/^\s*(GRANT|REVOKE)\s/i.test(statement.value)) { toast("write a GRANT or REVOKE statement"); return; }
      try { await sqlJob(statement.value); toast("Done"); grants(); } catch (error) { out.replaceChildren(errorBox(error)); }
    });
    const list = h("div");
    async function grants() {
      try {
        const { data } = await api(`${FLEUVE}/grants`);
        list.replaceChildren(data.length ? table(["grantee", "privilege", "on", "granted by"], data.map((g) => [`${g.granteeType.toLowerCase()} ${g.grantee}`, g.privilege, g.object, g.grantedBy || ""]))
          : h("p", { class: "muted" }, "No grant yet: only admins can read data."));
      } catch (error) { list.replaceChildren(errorBox(error)); }
    }
    grants();
    return h("div", { class: "stack" }, list, form, out);
  };
  const connectionsPanel = async () => {
    const { data } = await api(`${FLEUVE}/connections`);
    return table(["connection", "source", "streams", ""], data.map((c) => [c.name, c.source.type, c.streams.map((s) => s.name).join(", "),
      h("button", { type: "button", class: "secondary", onclick: async () => {
        try { const r = await api(`${FLEUVE}/connections/${encodeURIComponent(c.name)}/sync`, { method: "POST" }); toast(`Sync job ${r.job.id} started`); } catch (error) { toast(error.message); }
      } }, "Sync now")]));
  };
  root.replaceChildren(h("h1", {}, "Admin"), h("div", { class: "panel" }, tabs([
    ["Users", usersPanel], ["Roles", rolesPanel], ["Grants", grantsPanel], ["Connections", connectionsPanel]])));
}
