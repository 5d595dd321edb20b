// The mall's own labels in English and Chinese. Merchant data (names, titles,
// descriptions) and the hub's userError messages are shown as the hub sends them.

import { formatMoney } from "/assets/money.js";

const en = {
  brand: "Universal Mall",
  tagline: "Spend points from any program at any merchant",
  signInTitle: "Sign in",
  demoPickerIntro: "Demo: pick a member. This storefront's backend mints the session for you.",
  manualIntro:
    "Enter the storefront's STOREFRONT key and a member session token from your own backend (createMemberSession). Never put a MERCHANT or ADMIN key in a browser.",
  manualToggle: "Use a storefront key and member token instead",
  manualTitle: "Sign in with a storefront key and a member token",
  storefrontKey: "Storefront key",
  memberToken: "Member token (from createMemberSession)",
  signIn: "Sign in",
  signOut: "Sign out",
  sessionExpired: "The session has ended; sign in again.",
  signInFailed: "Could not sign in: {message}",
  notAMember: "The token does not name a member; mint one with createMemberSession.",
  balancesTitle: "Your points",
  held: "{points} on hold",
  asOf: "as of {time} (the partner is not answering)",
  expiresSoonest: "{points} expire {date}",
  neverExpires: "Nothing expiring",
  soonestOverall: "Expiring soonest: {points} {program} on {date}",
  noExpiry: "None of your points are due to expire.",
  noTier: "No tier yet",
  tierProgress: "{spend} spent in {orders} purchases over the last 12 months",
  tierToNext: "{amount} more to {tier}",
  tierOrdersToNext: "and {orders} more purchases",
  tierTop: "Top tier: keep it with the same spend over 12 months",
  creditLevel: "Credit level: {level}",
  "credit.EXCELLENT": "Excellent",
  "credit.GOOD": "Good",
  "credit.FAIR": "Fair",
  "credit.POOR": "Poor",
  opensForYou: "Opens for you at {time}",
  earlyAccess: "Early access for you until {time}",
  convertTitle: "Convert points",
  from: "From",
  to: "To",
  points: "Points",
  getQuote: "Get a quote",
  quoteSummary: "Pay {points} {from}, receive {receive} {to}",
  route: "Route: {route}",
  expiresIn: "Rate held for {time}",
  quoteExpired: "The quote has expired; get a new one.",
  convert: "Convert",
  converted: "Converted {debited} {from} into {credited} {to} ({status}).",
  catalogTitle: "Rewards",
  category: "Category",
  merchant: "Merchant",
  kind: "Type",
  priceIn: "Price in / pay with",
  date: "Date",
  search: "Search",
  searchPlaceholder: "Title or description",
  all: "All",
  clearFilters: "Clear",
  unavailable: "Not answering right now, their rewards will be back soon: {names}.",
  loading: "Loading…",
  endOfCatalog: "That is everything.",
  noRewards: "No rewards match these filters.",
  outOfStock: "Out of stock",
  inStock: "{stock} left",
  notPayable: "Not payable with {program}",
  listPrice: "was {points}",
  ownPrice: "{points} {program} at the merchant",
  slot: "Slot",
  pickSlot: "Pick a slot…",
  noSlots: "No slots on this date",
  slotLeft: "{left} left",
  pickSlotFirst: "Pick a slot first.",
  redeem: "Redeem for {points} {program}",
  redeemShort: "Redeem",
  redeemed: "Redeemed: {points} {program}. Booking {ref}.",
  redeemedNoRef: "Redeemed: {points} {program}.",
  redemptionsTitle: "Your redemptions",
  noRedemptions: "No redemptions yet.",
  moreRedemptions: "Show more",
  paid: "Paid {points} {program}",
  refunded: "Refunded {points} {program}",
  compensation: "Compensation {points} {program}",
  booking: "Booking {ref}",
  cancel: "Cancel",
  cancelling: "Cancelling…",
  working: "Working…",
  networkError: "The hub did not answer ({message}). Try again.",
  greenBadge: "Green",
  greenNote: "Green points pay for the green zone's eco rewards.",
  greenZoneButton: "Open the green zone",
  greenZoneBanner: "Green zone: eco rewards your {program} points pay for.",
  voucherOff: "{face} off a bill of {min} or more",
  voucherOffNoMin: "{face} off any bill",
  voucherDays: "valid {days} days",
  voucherCode: "Voucher code",
  voucherShow: "Show this code at the till; it is used once.",
  voucherValidUntil: "Valid until {date}",
  voucherUsed: "Used for order {order} on {date}",
  redeemedVoucher: "Redeemed: {points} {program}. Your voucher code: {code}",
  "status.PENDING": "Pending",
  "status.CANCELLING": "Cancellation pending",
  "status.CONFIRMED": "Confirmed",
  "status.CANCELLED": "Cancelled",
  "status.FAILED": "Failed",
  "kind.GOODS": "Goods",
  "kind.VOUCHER": "Voucher",
  "kind.HOTEL_NIGHT": "Hotel night",
  "kind.ROOM_UPGRADE": "Room upgrade",
  "kind.HOTEL_SERVICE": "Hotel service",
  "kind.AWARD_FLIGHT": "Award flight",
  "kind.LOUNGE_ACCESS": "Lounge access",
  "kind.MEAL": "Meal",
  "kind.ATTRACTION_TICKET": "Attraction ticket",
  "kind.SERVICE": "Service",
  "category.PLATFORM": "Platform",
  "category.HOTEL": "Hotels",
  "category.AIRLINE": "Airlines",
  "category.RESTAURANT": "Restaurants",
  "category.SCENIC_SPOT": "Scenic spots",
  "category.RETAIL": "Retail",
  "category.OTHER": "Other",
};

const zh = {
  brand: "积分通兑商城",
  tagline: "任意积分，任意商户兑换",
  signInTitle: "登录",
  demoPickerIntro: "演示：选择一位会员，由本商城的后端为其签发会话。",
  manualIntro:
    "请输入商城的 STOREFRONT 密钥，以及由您自己的后端（createMemberSession）签发的会员会话令牌。切勿把 MERCHANT 或 ADMIN 密钥放进浏览器。",
  manualToggle: "改用商城密钥和会员令牌登录",
  manualTitle: "使用商城密钥和会员令牌登录",
  storefrontKey: "商城密钥",
  memberToken: "会员令牌（来自 createMemberSession）",
  signIn: "登录",
  signOut: "退出",
  sessionExpired: "会话已结束，请重新登录。",
  signInFailed: "无法登录：{message}",
  notAMember: "该令牌不属于任何会员，请用 createMemberSession 重新签发。",
  balancesTitle: "我的积分",
  held: "冻结 {points}",
  asOf: "截至 {time}（合作方暂无响应）",
  expiresSoonest: "{points} 将于 {date} 过期",
  neverExpires: "暂无到期积分",
  soonestOverall: "最早到期：{points} {program}，{date}",
  noExpiry: "您的积分暂无到期。",
  noTier: "暂未获得等级",
  tierProgress: "近12个月消费 {spend}，共 {orders} 笔",
  tierToNext: "再消费 {amount} 升级为{tier}",
  tierOrdersToNext: "并再购买 {orders} 笔",
  tierTop: "已是最高等级：12个月内保持同等消费即可保级",
  creditLevel: "信用等级：{level}",
  "credit.EXCELLENT": "优秀",
  "credit.GOOD": "良好",
  "credit.FAIR": "一般",
  "credit.POOR": "较差",
  opensForYou: "将于 {time} 向您开放",
  earlyAccess: "您可优先兑换，{time} 起向所有人开放",
  convertTitle: "积分兑换",
  from: "转出",
  to: "转入",
  points: "积分数",
  getQuote: "获取报价",
  quoteSummary: "支付 {points} {from}，获得 {receive} {to}",
  route: "路径：{route}",
  expiresIn: "汇率锁定剩余 {time}",
  quoteExpired: "报价已过期，请重新获取。",
  convert: "兑换",
  converted: "已将 {debited} {from} 兑换为 {credited} {to}（{status}）。",
  catalogTitle: "礼品与服务",
  category: "类别",
  merchant: "商户",
  kind: "类型",
  priceIn: "计价 / 支付积分",
  date: "日期",
  search: "搜索",
  searchPlaceholder: "名称或描述",
  all: "全部",
  clearFilters: "清除",
  unavailable: "以下商户暂时无响应，其礼品稍后恢复：{names}。",
  loading: "加载中…",
  endOfCatalog: "已经到底了。",
  noRewards: "没有符合条件的礼品。",
  outOfStock: "已售罄",
  inStock: "剩余 {stock}",
  notPayable: "不可用 {program} 支付",
  listPrice: "原价 {points}",
  ownPrice: "商户价 {points} {program}",
  slot: "场次",
  pickSlot: "选择场次…",
  noSlots: "该日期无可选场次",
  slotLeft: "余 {left}",
  pickSlotFirst: "请先选择场次。",
  redeem: "用 {points} {program} 兑换",
  redeemShort: "兑换",
  redeemed: "兑换成功：{points} {program}，预订号 {ref}。",
  redeemedNoRef: "兑换成功：{points} {program}。",
  redemptionsTitle: "我的兑换",
  noRedemptions: "暂无兑换记录。",
  moreRedemptions: "显示更多",
  paid: "已付 {points} {program}",
  refunded: "已退 {points} {program}",
  compensation: "补偿 {points} {program}",
  booking: "预订号 {ref}",
  cancel: "取消",
  cancelling: "取消中…",
  working: "处理中…",
  networkError: "中心无响应（{message}），请重试。",
  greenBadge: "绿色",
  greenNote: "绿色积分可兑换绿色专区的环保好礼。",
  greenZoneButton: "进入绿色专区",
  greenZoneBanner: "绿色专区：可用 {program} 兑换的环保好礼。",
  voucherOff: "满 {min} 减 {face}",
  voucherOffNoMin: "立减 {face}",
  voucherDays: "有效期 {days} 天",
  voucherCode: "券码",
  voucherShow: "请在收银台出示此券码，仅可使用一次。",
  voucherValidUntil: "有效期至 {date}",
  voucherUsed: "已于 {date} 用于订单 {order}",
  redeemedVoucher: "兑换成功：{points} {program}，券码 {code}",
  "status.PENDING": "处理中",
  "status.CANCELLING": "取消处理中",
  "status.CONFIRMED": "已确认",
  "status.CANCELLED": "已取消",
  "status.FAILED": "失败",
  "kind.GOODS": "商品",
  "kind.VOUCHER": "代金券",
  "kind.HOTEL_NIGHT": "酒店住宿",
  "kind.ROOM_UPGRADE": "房型升级",
  "kind.HOTEL_SERVICE": "酒店服务",
  "kind.AWARD_FLIGHT": "奖励机票",
  "kind.LOUNGE_ACCESS": "贵宾休息室",
  "kind.MEAL": "餐食",
  "kind.ATTRACTION_TICKET": "景区门票",
  "kind.SERVICE": "服务",
  "category.PLATFORM": "平台",
  "category.HOTEL": "酒店",
  "category.AIRLINE": "航空",
  "category.RESTAURANT": "餐饮",
  "category.SCENIC_SPOT": "景区",
  "category.RETAIL": "零售",
  "category.OTHER": "其他",
};

const LANGUAGES = { en, zh };
export const KINDS = [
  "GOODS",
  "VOUCHER",
  "HOTEL_NIGHT",
  "ROOM_UPGRADE",
  "HOTEL_SERVICE",
  "AWARD_FLIGHT",
  "LOUNGE_ACCESS",
  "MEAL",
  "ATTRACTION_TICKET",
  "SERVICE",
];
export const CATEGORIES = [
  "PLATFORM",
  "HOTEL",
  "AIRLINE",
  "RESTAURANT",
  "SCENIC_SPOT",
  "RETAIL",
  "OTHER",
];

let current = "en";

/** The language in use: "en" or "zh". */
export function language() {
  return current;
}

/** Switch language; the caller re-renders. */
export function setLanguage(lang) {
  current = lang in LANGUAGES ? lang : "en";
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  try {
    localStorage.setItem("mall.lang", current);
  } catch {
    // Storage may be off (private mode); the choice then lasts for the page.
  }
  translatePage();
}

/** The saved language, else the browser's if it is Chinese, else English. */
export function initialLanguage() {
  let saved = null;
  try {
    saved = localStorage.getItem("mall.lang");
  } catch {
    saved = null;
  }
  if (saved && saved in LANGUAGES) return saved;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en";
}

/** A label with {placeholders} filled in. */
export function t(key, params = {}) {
  const text = LANGUAGES[current][key] ?? LANGUAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** Fill every element marked data-i18n (text) or data-i18n-placeholder. */
function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
}

/** A number as people of this language write it. */
export function formatNumber(n) {
  return new Intl.NumberFormat(current === "zh" ? "zh-CN" : "en-US").format(n);
}

/** What a voucher takes off a bill: "50 off a bill of 200 or more". */
export function voucherOff(voucher) {
  const whole = (v) => formatMoney(v).replace(/\.00$/, ""); // "50 off 200", not "50.00"
  const params = { face: whole(voucher.faceValue), min: whole(voucher.minSpend) };
  return t(Number(voucher.minSpend) > 0 ? "voucherOff" : "voucherOffNoMin", params);
}

/** A date and time in the browser's time zone. */
export function formatDateTime(iso) {
  return new Intl.DateTimeFormat(current === "zh" ? "zh-CN" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
  }).format(new Date(iso));
}

// Money as the hub sends it ("2700.00"), grouped with 2 places from its digits (never a
// float); English and Chinese write it alike.
export { formatMoney };

/** A date only. */
export function formatDate(iso) {
  return new Intl.DateTimeFormat(current === "zh" ? "zh-CN" : "en-GB", {
    dateStyle: "medium",
  }).format(new Date(iso));
}
