// govqa's page: ask (streamed answers with cited excerpts), read a source, manage reports.
// Everything from the server or the user is put in the page as text (textContent, text nodes):
// never as HTML, so a report holding <script> shows it literally.
"use strict";

const KEY_STORE = "govqa.key";
const FOLLOW_UPS = 5; // user messages sent: the question and those before it (as the API reads them)
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c); // strings become text nodes
  return node;
}

function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { ...extra, "X-API-Key": key } : extra;
}

// the detail of a problem+json error, or the status
async function failure(response) {
  try {
    const body = await response.json();
    return `${response.status}：${body.detail || body.title}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (!response.ok) throw new Error(await failure(response));
  return response.json();
}

function yearLabel(year) {
  return year == null ? "年份不明" : `${year}年`;
}

function show(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

// ---------------------------------------------------------------- tabs and key

function selectTab(name) {
  for (const tab of ["ask", "reports"]) {
    const on = tab === name;
    $(`tab-${tab}`).setAttribute("aria-selected", String(on));
    $(`view-${tab}`).hidden = !on;
  }
  if (name === "reports") loadReports();
}

function saveKey(event) {
  event.preventDefault();
  const key = $("key").value.trim();
  if (key) sessionStorage.setItem(KEY_STORE, key);
  else sessionStorage.removeItem(KEY_STORE);
  $("key-state").textContent = key ? "已保存（仅本标签页）" : "未设密钥";
  loadReports();
}

// ---------------------------------------------------------------- reports: pickers and list

let reports = [];

async function loadReports() {
  try {
    reports = (await api("/v1/reports")).reports;
    show($("reports-error"), "");
  } catch (error) {
    reports = [];
    show($("reports-error"), error.message.startsWith("401")
      ? "服务器需要 API 密钥：请在页面上方输入并保存。" : `无法读取报告列表：${error.message}`);
  }
  fillPickers();
  renderReports();
}

function fillPickers() {
  const pickers = [[$("org"), [...new Set(reports.map((r) => r.org).filter(Boolean))].sort(), (o) => o],
                   [$("year"), [...new Set(reports.map((r) => r.year).filter((y) => y != null))].sort().reverse(), yearLabel]];
  for (const [select, values, label] of pickers) {
    const chosen = select.value;
    select.replaceChildren(select.options[0]);
    for (const v of values) select.append(el("option", { value: String(v), text: label(v) }));
    select.value = values.map(String).includes(chosen) ? chosen : "";
  }
}

function renderReports() {
  const words = $("filter").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const shown = reports.filter((r) => {
    const hay = [r.org, r.title, r.source, yearLabel(r.year), ...(r.aliases || [])].join(" ").toLowerCase();
    return words.every((w) => hay.includes(w));
  });
  $("reports-count").textContent = `（${shown.length} / ${reports.length} 份）`;
  $("reports").tBodies[0].replaceChildren(...shown.map((r) => {
    const review = r.review.length ? el("span", { class: "flag", title: r.review.join("；"), text: "需核对" }) : "—";
    const source = r.url ? el("a", { href: r.url, target: "_blank", rel: "noopener noreferrer", text: r.source }) : r.source;
    const remove = el("button", { type: "button", class: "danger", text: "删除",
                                  "aria-label": `删除 ${r.org || r.source} ${yearLabel(r.year)}`,
                                  onclick: () => deleteReport(r) });
    const cells = [["单位", r.org || "单位不明"], ["年份", yearLabel(r.year)], ["发布日期", r.published || "—"],
                   ["段落", String(r.passages)], ["需核对", review], ["来源", source], ["操作", remove]];
    return el("tr", {}, ...cells.map(([label, value]) => el("td", { "data-label": label }, value)));
  }));
}

async function deleteReport(report) {
  if (!confirm(`从索引中删除「${report.org || report.source} ${yearLabel(report.year)}」？`)) return;
  try {
    await api(`/v1/reports/${encodeURIComponent(report.id)}`, { method: "DELETE" });
    $("reports-state").textContent = `已删除 ${report.source}`;
  } catch (error) {
    show($("reports-error"), `删除失败：${error.message}`);
  }
  loadReports();
}

async function reloadIndex() {
  try {
    const body = await api("/v1/index/reload", { method: "POST" });
    $("reports-state").textContent = `已加载索引版本 ${body.generation}`;
  } catch (error) {
    show($("reports-error"), `重新加载失败：${error.message}`);
  }
  loadReports();
}

// Upload with XMLHttpRequest: fetch() reports no upload progress.
function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const bar = $("upload-progress");
  const results = $("upload-results");
  results.replaceChildren(el("li", { text: `正在上传 ${files.length} 个文件……` }));
  bar.hidden = false;
  bar.value = 0;
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/reports");
  for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total); };
  xhr.upload.onload = () => { results.replaceChildren(el("li", { text: "已上传，正在建立索引……" })); };
  xhr.onerror = () => { bar.hidden = true; results.replaceChildren(el("li", { class: "error", text: "上传失败：连接中断" })); };
  xhr.onload = () => {
    bar.hidden = true;
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON: the status says enough */ }
    showResults(xhr.status, body);
    $("files").value = "";
  };
  xhr.send(form);
}

// each file's (or URL's) line of an ingest, or why the request failed
function showResults(status, body) {
  const lines = body.files || [];
  if (!lines.length) {
    $("upload-results").replaceChildren(el("li", { class: "error", text: `失败：${status} ${body.detail || ""}` }));
  } else {
    $("upload-results").replaceChildren(...lines.map((f) => el("li", { class: f.status === "failed" ? "error" : "" },
      `${f.file}：${STATUS[f.status] || f.status}`,
      f.status === "failed" ? `（${f.error}）` : `（${f.org || "单位不明"} ${yearLabel(f.year)}，${f.passages} 段）`,
      ...f.warnings.map((w) => el("div", { class: "muted", text: w })))));
  }
  loadReports();
}

async function addUrls(event) {
  event.preventDefault();
  const urls = $("urls").value.split(/\s+/).filter(Boolean);
  if (!urls.length) return;
  $("fetch-urls").disabled = true;
  $("upload-results").replaceChildren(el("li", { text: `正在抓取 ${urls.length} 个网址并建立索引……` }));
  try {
    const response = await fetch("/v1/reports", {
      method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify({ urls }),
    });
    showResults(response.status, await response.json().catch(() => ({})));
    if (response.ok) $("urls").value = "";
  } catch (error) {
    showResults(0, { detail: error.message });
  } finally {
    $("fetch-urls").disabled = false;
  }
}

const STATUS = { added: "已添加", updated: "已更新", unchanged: "未变化", duplicate: "重复", removed: "已删除", failed: "失败" };

// ---------------------------------------------------------------- ask

let asked = []; // this conversation's questions, oldest first

function newConversation() {
  asked = [];
  $("conversation").replaceChildren();
  show($("ask-error"), "");
  $("question").focus();
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  show($("ask-error"), "");
  const turn = el("li", { class: "turn" }, el("p", { class: "asked", text: question }));
  const streamed = el("p", { class: "answer streaming", text: "" });
  turn.append(streamed);
  $("conversation").append(turn);
  $("ask").disabled = true;
  const messages = [...asked, question].slice(-FOLLOW_UPS).map((content) => ({ role: "user", content }));
  const body = { model: "govqa", stream: true, messages };
  if ($("org").value) body.org = $("org").value;
  if ($("year").value) body.year = Number($("year").value);
  try {
    const answer = await streamChat(body, (text) => { streamed.textContent += text; });
    asked.push(question);
    streamed.remove();
    turn.append(renderAnswer(question, answer));
    $("question").value = "";
  } catch (error) {
    turn.remove();
    show($("ask-error"), `提问失败：${error.message}`);
  } finally {
    $("ask").disabled = false;
  }
}

// POST the chat request and read its server-sent events: text as it comes, the answer at the end
async function streamChat(body, onText) {
  const response = await fetch("/v1/chat/completions", {
    method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(await failure(response));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let answer = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      const text = chunk.choices[0].delta.content;
      if (text) onText(text);
      if (chunk.govqa) answer = chunk.govqa;
    }
  }
  if (!answer) throw new Error("回答不完整（连接中断）");
  return answer;
}

function renderAnswer(question, a) {
  const box = el("div", { class: a.found ? "result" : "result not-found" });
  const lead = el("p", { class: "answer" });
  let at = 0;
  for (const [start, end] of a.figures) { // the cited figures in bold
    lead.append(a.answer.slice(at, start), el("strong", { text: a.answer.slice(start, end) }));
    at = end;
  }
  lead.append(a.answer.slice(at));
  box.append(lead);
  if (!a.found) {
    const s = a.searched;
    box.append(el("p", { class: "muted", text:
      `检索范围：${s.orgs.length ? s.orgs.join("、") : "全部单位"}，${s.years.length ? s.years.map(yearLabel).join("、") : "全部年份"}，共 ${s.reports} 份报告。` }));
  }
  if (a.table.length) box.append(renderTable(a.table), renderChart(a.table));
  if (a.citations.length) box.append(el("h3", { text: "来源" }), renderCards(a.citations));
  if (a.related.length) box.append(el("h3", { text: "可能相关" }), renderCards(a.related));
  const copy = el("button", { type: "button", class: "secondary", text: "复制回答和出处" });
  const copied = el("span", { class: "muted", role: "status" });
  copy.addEventListener("click", async () => {
    copied.textContent = (await copyText(answerText(question, a))) ? "已复制" : "无法复制";
  });
  box.append(el("p", {}, copy, " ", copied));
  return box;
}

function renderTable(rows) {
  const table = el("table", { class: "figures" },
    el("thead", {}, el("tr", {}, ...["单位", "年份", "数字", "说法", "出处"].map((h) => el("th", { scope: "col", text: h })))));
  table.append(el("tbody", {}, ...rows.map((r) => el("tr", {},
    ...[r.unit, yearLabel(r.year), r.value, r.wording || "—", r.citation ? `[${r.citation}]` : "—"]
      .map((v, i) => el("td", { "data-label": ["单位", "年份", "数字", "说法", "出处"][i], text: v }))))));
  return table;
}

// a bar a figure (rows without one are left out), drawn as SVG by the page
function renderChart(rows) {
  const bars = rows.filter((r) => r.number != null);
  if (bars.length < 2) return el("span");
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  const max = Math.max(...bars.map((r) => r.number)) || 1;
  const rowHeight = 28;
  svg.setAttribute("viewBox", `0 0 400 ${bars.length * rowHeight}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", bars.map((r) => `${r.unit} ${yearLabel(r.year)}：${r.value}`).join("；"));
  bars.forEach((r, i) => {
    const y = i * rowHeight;
    const label = document.createElementNS(NS, "text");
    label.setAttribute("x", "0");
    label.setAttribute("y", String(y + 18));
    label.textContent = `${r.unit} ${r.year ?? ""}`;
    const bar = document.createElementNS(NS, "rect");
    bar.setAttribute("x", "150");
    bar.setAttribute("y", String(y + 5));
    bar.setAttribute("height", "18");
    bar.setAttribute("width", String(Math.max(1, (180 * r.number) / max)));
    const value = document.createElementNS(NS, "text");
    value.setAttribute("x", String(155 + (180 * r.number) / max));
    value.setAttribute("y", String(y + 18));
    value.textContent = r.value;
    svg.append(label, bar, value);
  });
  return svg;
}

function renderCards(citations) {
  return el("ol", { class: "cards" }, ...citations.map((c) => {
    const excerpt = el("blockquote", { class: "excerpt" });
    if (c.mark) {
      const [a, b] = c.mark;
      excerpt.append(c.excerpt.slice(0, a), el("mark", { text: c.excerpt.slice(a, b) }), c.excerpt.slice(b));
    } else {
      excerpt.append(c.excerpt);
    }
    const open = el("button", { type: "button", class: "card-open",
                                "aria-label": `[${c.n}] 打开原文：${c.org} ${yearLabel(c.year)} ${c.title}` },
      el("span", { class: "n", text: `[${c.n}]` }), " ",
      el("span", { class: "card-title", text: `${c.org || "单位不明"} · ${yearLabel(c.year)} · ${c.title}` }));
    open.addEventListener("click", () => openSource(c, open));
    const where = [c.section, c.page ? `第${c.page}页` : ""].filter(Boolean).join(" · ");
    return el("li", { class: "card" }, open, where ? el("p", { class: "muted section", text: where }) : "", excerpt);
  }));
}

async function openSource(citation, opener) {
  let report;
  try {
    report = await api(`/v1/reports/${encodeURIComponent(citation.report_id)}`);
  } catch (error) {
    show($("ask-error"), `无法打开原文：${error.message}`);
    return;
  }
  $("source-title").textContent = report.title || report.source;
  $("source-meta").textContent = [report.org || "单位不明", yearLabel(report.year),
                                  report.published ? `发布于 ${report.published}` : "", report.source].filter(Boolean).join(" · ");
  const link = $("source-url");
  link.hidden = !report.url;
  if (report.url) link.href = report.url;
  const hit = el("mark", { id: "source-hit" });
  const [a, b] = citation.mark || [0, 0]; // the answering clause, within the excerpt
  const excerpt = report.text.slice(citation.start, citation.end);
  hit.append(excerpt.slice(0, a), b > a ? el("strong", { class: "clause", text: excerpt.slice(a, b) }) : "", excerpt.slice(b));
  $("source-text").replaceChildren(report.text.slice(0, citation.start), hit, report.text.slice(citation.end));
  const dialog = $("source");
  dialog.returnFocus = opener;
  dialog.showModal();
  hit.scrollIntoView({ block: "center" });
  $("source-close").focus();
}

function answerText(question, a) {
  const lines = [`问：${question}`, `答：${a.answer}`];
  for (const r of a.table) lines.push(`  ${r.unit} ${yearLabel(r.year)}：${r.value}`);
  for (const c of a.citations) {
    const where = [c.section, c.page ? `第${c.page}页` : "", c.url].filter(Boolean).map((w) => " · " + w).join("");
    lines.push(`[${c.n}] ${c.org} · ${yearLabel(c.year)} · ${c.title}${where}`);
    lines.push(`    ${c.excerpt}`);
  }
  return lines.join("\n");
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // no clipboard API (a page not on https or localhost): a selected text area and the copy command
    const area = el("textarea", { class: "visually-hidden", readonly: "" });
    area.value = text;
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

// ---------------------------------------------------------------- wiring

document.addEventListener("DOMContentLoaded", () => {
  $("tab-ask").addEventListener("click", () => selectTab("ask"));
  $("tab-reports").addEventListener("click", () => selectTab("reports"));
  $("key-form").addEventListener("submit", saveKey);
  $("key").value = sessionStorage.getItem(KEY_STORE) || "";
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { // Shift+Enter: a new line
      e.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("new-chat").addEventListener("click", newConversation);
  $("filter").addEventListener("input", renderReports);
  $("reload").addEventListener("click", reloadIndex);
  $("files").addEventListener("change", () => upload([...$("files").files]));
  $("url-form").addEventListener("submit", addUrls);
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    upload([...e.dataTransfer.files]);
  });
  const dialog = $("source");
  $("source-close").addEventListener("click", () => dialog.close());
  // back to the card that opened it, where the browser did not already put the focus (the close
  // event comes later: the focus may have moved on by then, and must not be taken back)
  dialog.addEventListener("close", () => {
    if (document.activeElement === document.body) dialog.returnFocus?.focus();
  });
  loadReports();
});
