// Runs before the first paint (a plain blocking script, not a module): the
// saved light/dark choice, else the system's (style.css).
(function () {
  var t = localStorage.getItem('sluice.theme');
  if (!t) t = matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  document.documentElement.dataset.theme = t;
})();
