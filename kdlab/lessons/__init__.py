"""One module per notebook: the experiments that notebook runs, and nothing generic.

======================  ==============================================
notebook                lesson module
======================  ==============================================
00 Quick start          :mod:`kdlab.lessons.quickstart`
01 Soft targets         :mod:`kdlab.lessons.soft_targets`
02 Temperature, alpha   :mod:`kdlab.lessons.temperature`
03 Feature hints        :mod:`kdlab.lessons.feature_hints`
04 A new domain         :mod:`kdlab.lessons.new_domain`
05 Pitfalls             :mod:`kdlab.lessons.pitfalls`
06 Language models      :mod:`kdlab.lessons.language`
07, 08 When KD works    :mod:`kdlab.lessons.when_kd_works`
======================  ==============================================

A notebook imports its own lesson module by name (``from kdlab.lessons import soft_targets as
lesson``); everything generic (losses, training, the comparison protocol) is in :mod:`kdlab`.
"""
