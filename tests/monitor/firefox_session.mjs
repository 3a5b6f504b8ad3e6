// The monitor in Debian's Firefox ESR, driven by Puppeteer over WebDriver BiDi.
//
// Why a Node process: Playwright drives Firefox through its own patched build (not installable
// here) or, for a stock Firefox, through WebDriver BiDi commands that Firefox ESR does not
// implement yet (emulation.setMediaFeaturesOverride, sent at every context's start). Puppeteer
// speaks the BiDi that Firefox ESR ships. test_firefox.py starts this file once per module (one
// browser session) and sends one JSON line per check on stdin:
//   {"check": NAME, "url": MONITOR_URL, "hub": TASK_HUB, "ids": {...}, "screenshots": DIR}
// and reads one JSON line back per check:
//   {"check": NAME, "failure": null | TEXT, "errors": [console errors and page errors],
//    "requests": [every URL the page asked for]}
// Each check repeats, for Firefox, what the Chromium tests check through Playwright. Waits are
// bounded by time (TIMEOUT_MS), never by a count of polls.

import path from "node:path";
import readline from "node:readline";
import puppeteer from "puppeteer-core";

const TIMEOUT_MS = 20_000;
const XSS = "<img src=x onerror=window.__xss=1>";
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

class CheckFailed extends Error {}

function fail(message) {
  throw new CheckFailed(message);
}

// Waits until fn(...args), run in the page, is truthy; fails naming what was awaited.
async function until(page, what, fn, ...args) {
  try {
    await page.waitForFunction(fn, { timeout: TIMEOUT_MS, polling: 100 }, ...args);
  } catch (error) {
    if (error?.name !== "TimeoutError") throw error;
    const url = page.url();
    fail(`timed out after ${TIMEOUT_MS} ms waiting for ${what} (at ${url})`);
  }
}

// The text of the first element matching selector contains (or equals) the expected text.
function hasText(page, selector, expected, { exact = false } = {}) {
  return until(page, `${selector} to ${exact ? "read" : "contain"} ${JSON.stringify(expected)}`,
    (sel, want, whole) => {
      const el = document.querySelector(sel);
      if (!el) return false;
      const text = el.textContent.replace(/\s+/g, " ").trim();
      return whole ? text === want : text.includes(want);
    }, selector, expected, exact);
}

function rowCount(page, selector, count) {
  return until(page, `${count} rows in ${selector}`,
    (sel, n) => document.querySelectorAll(sel).length === n, selector, count);
}

// Visible as a user sees it: laid out with a size, not hidden by CSS.
function visible(page, selector) {
  return until(page, `${selector} to be visible`, (sel) => {
    const el = document.querySelector(sel);
    if (!el) return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && el.checkVisibility({ visibilityProperty: true });
  }, selector);
}

// A row of the given kind in the timeline whose label holds the text.
function timelineRow(page, kind, text) {
  return until(page, `a ${kind} row for ${text} in the timeline`, (k, t) =>
    [...document.querySelectorAll(`#timeline .row[data-kind=${k}]`)].some((row) => row.textContent.includes(t)),
  kind, text);
}

// A cell of the table whose whole text is the value (Playwright's role cell, exact).
function cell(page, table, value) {
  return until(page, `a cell ${JSON.stringify(value)} in ${table}`, (t, v) =>
    [...document.querySelectorAll(`${t} td`)].some((td) => td.textContent.trim() === v), table, value);
}

// The page does not scroll sideways: wide tables scroll inside their own box.
async function fitsWidth(page, width) {
  const sizes = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  if (sizes.scroll > width || sizes.scroll > sizes.client) {
    fail(`the page scrolls sideways at ${width} px: scrollWidth ${sizes.scroll}, clientWidth ${sizes.client}`);
  }
}

// A route of the page, opened as a fresh load so nothing of the previous route is left.
async function open(page, job, route) {
  await page.goto("about:blank");
  await page.goto(job.url + route, { timeout: TIMEOUT_MS });
}

async function shot(page, job, name) {
  await page.screenshot({ path: path.join(job.screenshots, `firefox-${name}.png`), fullPage: true });
}

async function clickSubmit(page, form) {
  await page.click(`${form} button[type=submit]`);
}

async function confirm(page) {
  await visible(page, "#confirm");
  await page.click("#confirm-ok");
}

const CHECKS = {
  async instances(page, job) {
    await open(page, job, "");
    for (const name of ["hello_sequence", "process_order", "wip_document", "batch_job", "approval_chain", "saga"]) {
      await cell(page, "#instance-table", name);
    }
    await hasText(page, "#hub", job.hub);
    await fitsWidth(page, DESKTOP.width);
    await shot(page, job, "01-instances");

    const rows = "#instance-table tbody tr";
    await page.locator("input[name=name]").fill("process_order");
    await clickSubmit(page, "#filters");
    await rowCount(page, rows, 2);
    await page.click("input[name=status][value=Completed]");
    await clickSubmit(page, "#filters");
    await until(page, "the Completed filter in the address", () => location.hash.includes("runtimeStatus=Completed"));
    await rowCount(page, rows, 2);
    await page.locator("input[name=customStatus]").fill("declined");
    await clickSubmit(page, "#filters");
    await rowCount(page, rows, 1);
    await until(page, "the declined order as the one row", (sel) =>
      document.querySelector(sel)?.dataset.instanceId === "order-declined", rows);
    await shot(page, job, "02-instances-filtered");

    await open(page, job, "#/instances?customStatus=lead%40example.com");
    await rowCount(page, rows, 1);
    await hasText(page, `${rows} td.status-text`, "Waiting for level 1 of 1");

    await open(page, job, "#/instances?name=hello_sequence&limit=2&refresh=off");
    await hasText(page, "#page-info", "1–2 of 3", { exact: true });
    await rowCount(page, rows, 2);
    const next = await page.waitForSelector("::-p-text(Next ›)", { timeout: TIMEOUT_MS });
    await next.click();
    await hasText(page, "#page-info", "3–3 of 3", { exact: true });
    await rowCount(page, rows, 1);
  },

  async instance(page, job) {
    await open(page, job, "#/instance?id=order-ok");
    for (const activity of ["charge_payment", "create_shipment", "record_order"]) {
      await timelineRow(page, "activity", activity);
    }
    await visible(page, "#timeline .row[data-kind=entity]");
    const child = "#timeline .row[data-kind=suborchestration] a";
    await hasText(page, child, "suborchestration: track_delivery", { exact: true });
    await hasText(page, "#where", "Completed");
    await hasText(page, "#panel", "Ledger entries");
    await hasText(page, "#panel", "order-ok:charge");
    await fitsWidth(page, DESKTOP.width);
    await shot(page, job, "03-instance-order");
    await page.click(child);
    await hasText(page, "#instance-id", "order-ok:tracking", { exact: true });
    await hasText(page, "#instance-head", "order-ok");

    await open(page, job, "#/instance?id=order-declined");
    await hasText(page, "#panel", "Compensations");
    await hasText(page, "#panel", "declined");
    await timelineRow(page, "suborchestration", "saga");
    await shot(page, job, "04-instance-order-declined");

    // Attacker-controlled input is shown as text, never run.
    await open(page, job, "#/instance?id=" + encodeURIComponent(job.ids.hello1));
    await hasText(page, "#input pre", XSS);
    const ran = await page.evaluate(() => ({ xss: window.__xss ?? null, images: document.querySelectorAll("img").length }));
    if (ran.xss !== null || ran.images !== 0) fail(`the input was run as HTML: ${JSON.stringify(ran)}`);
  },

  async event(page, job) {
    await open(page, job, "#/instance?id=" + encodeURIComponent(job.ids.chain));
    await hasText(page, "#where", "Waiting for level 1");
    await hasText(page, "#panel", "Levels, deadlines and decisions");
    await until(page, "the event name approval_req-wait_level_1", () =>
      document.querySelector("#event-name")?.value === "approval_req-wait_level_1");
    // The form is built from ApprovalDecisionEvent: a checkbox, an e-mail and a comment.
    await visible(page, "#event-form input[name=approved][type=checkbox]");
    await visible(page, "#event-form input[name=approverEmail]");
    await visible(page, "#event-form textarea[name=comments], #event-form input[name=comments]");
    await fitsWidth(page, DESKTOP.width);
    await shot(page, job, "05-instance-chain-waiting");

    // A payload the model refuses is refused by the server, naming the field.
    await page.locator("#event-form input[name=approverEmail]").fill("lead@example.com");
    await clickSubmit(page, "#event-form");
    await confirm(page);
    await hasText(page, "#banner", "comments");

    await page.click("#event-form input[name=approved]");
    await clickSubmit(page, "#event-form");
    await confirm(page);
    await hasText(page, "#banner", "raised");
    await hasText(page, "#instance-head .badge", "Completed", { exact: true });
    await hasText(page, "#where", "Finished: approved");
    await hasText(page, "#panel", "approved by lead@example.com");
    await shot(page, job, "06-instance-chain-approved");
  },

  async action(page, job) {
    await open(page, job, "#/instance?id=" + encodeURIComponent(job.ids.document));
    const badge = "#instance-head .badge";
    await hasText(page, badge, "Running", { exact: true });
    // Escape cancels: the dialog closes and nothing is sent.
    await page.locator("button[data-action=suspend]").setTimeout(TIMEOUT_MS).click();
    await visible(page, "#confirm-reason");
    await page.keyboard.press("Escape");
    await until(page, "the dialog to close on Escape", () => !document.querySelector("#confirm").open);
    const sent = await page.evaluate(() => !document.querySelector("#banner").hidden);
    if (sent) fail("the cancelled suspend was sent");
    // Suspend with a reason after confirmation, then resume.
    await page.locator("button[data-action=suspend]").setTimeout(TIMEOUT_MS).click();
    await visible(page, "#confirm-reason");
    await page.locator("#confirm-reason").fill("paused from Firefox");
    await page.click("#confirm-ok");
    await hasText(page, badge, "Suspended", { exact: true });
    await hasText(page, "#timeline", "paused from Firefox");
    await shot(page, job, "14-instance-document-suspended");
    await page.locator("button[data-action=resume]").setTimeout(TIMEOUT_MS).click();
    await confirm(page);
    await hasText(page, badge, "Running", { exact: true });
  },

  async metrics(page, job) {
    await open(page, job, "#/entities");
    // 10 stocked, 2 sold to order-ok; order-declined's reservation was released.
    await until(page, "SKU-MON with 8 available", () =>
      [...document.querySelectorAll("#entity-table tr")].some((tr) =>
        [...tr.cells].some((td) => td.textContent.trim() === "SKU-MON") && tr.textContent.includes('"available": 8')));
    await hasText(page, "#entity-table", "document_index");
    await shot(page, job, "07-entities");

    for (const [view, expected] of [["orders", "order-declined"], ["documents", "Onboarding <b>Ana</b>"],
      ["approvals", "req-late"], ["batches", "batch-mon"]]) {
      await open(page, job, `#/view?id=${view}`);
      await hasText(page, "#results", expected);
      await fitsWidth(page, DESKTOP.width);
      await shot(page, job, `08-view-${view}`);
    }

    await open(page, job, "#/metrics");
    await cell(page, "#orchestrator-metrics", "process_order");
    // One of two orders failed, and was compensated.
    const rates = await page.evaluate(() => {
      const row = [...document.querySelectorAll("#orchestrator-metrics tr")].find((tr) => tr.cells[0]?.textContent.trim() === "process_order");
      return [row.cells[5].textContent.trim(), row.cells[6].textContent.trim()];
    });
    if (rates[0] !== "50.0 %" || rates[1] !== "50.0 %") fail(`process_order failure and compensation rates: ${rates}`);
    await hasText(page, "#approval-metrics", "approval_chain: purchase");
    for (const chart of ["#series-chart", "#counts-chart", "#duration-chart", "#approval-latency-chart"]) {
      await visible(page, chart);
      await until(page, `bars drawn in ${chart}`, (sel) => document.querySelector(sel).querySelectorAll("rect, path, polyline, line").length > 0, chart);
    }
    await fitsWidth(page, DESKTOP.width);
    await shot(page, job, "09-metrics");
  },

  async phone(page, job) {
    await page.setViewport(PHONE);
    await open(page, job, "");
    await visible(page, "#instance-table");
    await fitsWidth(page, PHONE.width);
    await shot(page, job, "10-phone-instances");
    await open(page, job, "#/instance?id=order-ok");
    await visible(page, "#timeline .row");
    await fitsWidth(page, PHONE.width);
    await shot(page, job, "11-phone-instance");
    await open(page, job, "#/instance?id=" + encodeURIComponent(job.ids.chain));
    await visible(page, "#timeline .row");
    await fitsWidth(page, PHONE.width);
    await shot(page, job, "12-phone-instance-chain");
    await open(page, job, "#/metrics");
    await visible(page, "#counts-chart");
    await fitsWidth(page, PHONE.width);
    await shot(page, job, "13-phone-metrics");
  },
};

// An unexpected error with its causes (Puppeteer wraps the browser's answer in one).
function describe(error) {
  const parts = [];
  for (let e = error; e && parts.length < 4; e = e.cause) parts.push(String(e.stack || e));
  return parts.join("\ncaused by: ");
}

async function run(browser, job) {
  const page = await browser.newPage();
  const errors = [];
  const requests = [];
  page.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("request", (request) => { if (request.url() !== "about:blank") requests.push(request.url()); });
  let failure = null;
  try {
    await page.setViewport(DESKTOP);
    const check = CHECKS[job.check];
    if (!check) fail(`no check named ${job.check}`);
    await check(page, job);
  } catch (error) {
    failure = error instanceof CheckFailed ? error.message : describe(error);
  } finally {
    await page.close().catch(() => {});
  }
  return { check: job.check, failure, errors, requests };
}

async function main() {
  const [executablePath] = process.argv.slice(2);
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath,
    headless: true,
    defaultViewport: DESKTOP,
    protocolTimeout: 60_000,
    // The machine's network is closed: Firefox itself must not try to reach out either.
    extraPrefsFirefox: {
      "network.dns.disablePrefetch": true,
      "network.prefetch-next": false,
      "network.connectivity-service.enabled": false,
      "network.captive-portal-service.enabled": false,
      "browser.safebrowsing.update.enabled": false,
      "app.normandy.enabled": false,
      "messaging-system.rsexperimentloader.enabled": false,
    },
  });
  const write = (value) => process.stdout.write(JSON.stringify(value) + "\n");
  write({ ready: true, version: await browser.version() });
  const lines = readline.createInterface({ input: process.stdin });
  try {
    for await (const line of lines) {
      if (line.trim()) write(await run(browser, JSON.parse(line)));
    }
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  process.stderr.write(String(error?.stack || error) + "\n");
  process.exit(1);
});
