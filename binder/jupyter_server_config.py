# Jupyter server settings for the Binder image; binder/postBuild copies this file to
# $NB_PYTHON_PREFIX/etc/jupyter/, where the server reads it (tests/test_binder.py checks both).
#
# Why: mybinder.org gives a session 2 GB, each kdlab kernel holds 0.5-0.7 GB, and a kernel keeps
# running after its notebook is left (or its tab closed). A learner who walks the suite in order
# would pass the cap at the third notebook. Idle kernels are therefore shut down:
#
# - cull_idle_timeout = 15 min without running a cell. The reading times are 10-30 min per
#   notebook, so while a learner works in one notebook the previous one's kernel goes, and at
#   most two kernels are alive. A culled kernel costs a learner one "Run All" (every notebook
#   runs in under a minute); a shorter timeout would cull the notebook being read during a
#   workshop's talk.
# - cull_connected = True: JupyterLab keeps a connection open for every open notebook tab, and
#   learners leave tabs open; with False only kernels of closed tabs would ever be culled.
# - cull_busy = False: a kernel that is running a cell is never culled.
# - cull_interval = 60 s: how often the server looks.
#
# binder/overrides.json also makes closing a notebook tab shut its kernel down, and each
# notebook ends by asking the learner to do so.
c = get_config()  # noqa: F821 - injected by Jupyter's config loader
c.MappingKernelManager.cull_idle_timeout = 15 * 60
c.MappingKernelManager.cull_interval = 60
c.MappingKernelManager.cull_connected = True
c.MappingKernelManager.cull_busy = False
